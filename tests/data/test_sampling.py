import itertools

import ase
import ase.io
import numpy as np
import pytest
from ase.build import molecule
from scipy.spatial.transform import Rotation

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import read_structures
from metatrain_mbe.data.bulk import density, hydrogen_bulk
from metatrain_mbe.data.fragments import assign_fragments
from metatrain_mbe.data.sampling import sample_clusters


@pytest.mark.parametrize("regime, target", [("low", 0.46), ("high", 1.34)])
def test_bulk_frames_hit_the_density(regime, target):
    frame = hydrogen_bulk(regime, n_atoms=64, seed=3)
    assert density(frame) == pytest.approx(target, rel=1e-6)
    assert frame.pbc.all() and frame.info["regime"] == regime
    distances = frame.get_all_distances(mic=True)[np.triu_indices(64, 1)]
    if regime == "low":  # molecular: every atom has a partner at the H2 bond length
        nearest = np.sort(frame.get_all_distances(mic=True), axis=1)[:, 1]
        assert np.allclose(nearest, 0.74, atol=1e-6)
    assert distances.min() > 0.7


@pytest.mark.parametrize("regime, target", [("low", 0.720), ("high", 0.999), ("high", 1.25)])
def test_bulk_frames_at_the_paper_s_intermediate_densities(regime, target):
    frame = hydrogen_bulk(regime, n_atoms=64, seed=4, density=target)
    assert density(frame) == pytest.approx(target, rel=1e-6)
    assert frame.info["density"] == target and frame.info["regime"] == regime
    nearest = np.sort(frame.get_all_distances(mic=True), axis=1)[:, 1]
    if regime == "low":  # the packing stays molecular
        assert np.allclose(nearest, 0.74, atol=1e-6)
    # the spacing shrinks with the density: minimum distances scale as ρ^(-1/3)
    assert nearest.min() > 0.85 * (1.34 / target) ** (1 / 3) - 1e-9 or regime == "low"


def test_a_bulk_density_that_is_not_positive_is_refused():
    with pytest.raises(MBEInputError, match="--density: -1.0 is not a finite number > 0"):
        hydrogen_bulk("high", density=-1.0)


def test_nearest_protocol_takes_the_nearest_neighbours():
    frame = hydrogen_bulk("high", n_atoms=64, seed=0)
    # sorted distances from every bulk atom to its 7 nearest neighbours
    shells = np.sort(frame.get_all_distances(mic=True), axis=1)[:, 1:8]
    clusters = sample_clusters([frame], "nearest", 8, 20, seed=1)
    for cluster in clusters:
        assert len(cluster) == 8 and not cluster.pbc.any()
        assert np.allclose(cluster.positions.mean(axis=0), 0)
        own = np.sort(cluster.get_all_distances(), axis=1)[:, 1:]
        # some atom of the cluster has exactly the other seven as its bulk shell
        assert np.isclose(own[:, None, :], shells[None, :, :], atol=1e-8).all(-1).any()
    assert [c.info["mbe_parent"] for c in clusters] == list(range(20))
    assert clusters[0].info["regime"] == "high"


def test_pairs_protocol_keeps_molecules_whole():
    frame = hydrogen_bulk("low", n_atoms=64, seed=0)
    for cluster in sample_clusters([frame], "pairs", 8, 20, seed=2):
        nearest = np.sort(cluster.get_all_distances(), axis=1)[:, 1]
        assert np.allclose(nearest, 0.74, atol=1e-6)


def test_sampling_is_seeded_and_distinct():
    frames = [hydrogen_bulk("high", n_atoms=32, seed=k) for k in range(2)]
    a = sample_clusters(frames, "nearest", 8, 30, seed=5)
    b = sample_clusters(frames, "nearest", 8, 30, seed=5)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    keys = {tuple(np.round(np.sort(c.get_all_distances().ravel()), 6)) for c in a}
    assert len(keys) == 30


def test_bad_sampling_input():
    frame = hydrogen_bulk("high", n_atoms=32, seed=0)
    with pytest.raises(MBEInputError, match="fewer than --size 40"):
        sample_clusters([frame], "nearest", 40, 1)
    finite = frame.copy()
    finite.pbc = False
    with pytest.raises(MBEInputError, match="field 'pbc' must be periodic"):
        sample_clusters([finite], "nearest", 8, 1)


# --- sphere: whole molecules (or atoms) within a radius of a random centre atom

SHIFTS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)


def water_box(n=4, spacing=3.1, seed=0):
    """n**3 randomly rotated ase waters (O, H, H: atoms 3m .. 3m+2) on a jittered
    grid in a cubic periodic cell of side n * spacing, shifted and wrapped so
    that some molecules straddle the cell boundary."""
    rng = np.random.default_rng(seed)
    side = n * spacing
    box = ase.Atoms(cell=[side] * 3, pbc=True)
    for corner in itertools.product(range(n), repeat=3):
        water = molecule("H2O")
        rotation = Rotation.random(random_state=int(rng.integers(2**31)))
        water.positions = rotation.apply(water.positions - water.positions[0])
        water.positions += (np.array(corner) + 0.5) * spacing + rng.uniform(-0.2, 0.2, 3)
        box += water
    box.positions += rng.uniform(0, side, 3)
    box.wrap()
    box.info.update(regime="water", temperature=300.0)
    return box


def brute_mic(vectors, side):
    """Minimum-image vectors in a cubic cell, by trying the 27 nearest images."""
    images = vectors[:, None, :] + side * SHIFTS[None]
    best = np.argmin(np.linalg.norm(images, axis=2), axis=1)
    return images[np.arange(len(vectors)), best]


def expected_sphere(box, centre, radius):
    """By brute force: the molecules whose closest atom is within ``radius`` of
    atom ``centre`` (closest first), each as {bulk atom: unwrapped vector from
    the centre}, and the minimum distance of every molecule."""
    side = box.cell[0, 0]
    vectors = brute_mic(box.positions - box.positions[centre], side)
    distances = np.linalg.norm(vectors, axis=1).reshape(-1, 3)
    closest = distances.min(axis=1)
    kept = [int(m) for m in np.argsort(closest) if closest[m] <= radius]
    molecules = []
    for m in kept:
        anchor = 3 * m + int(np.argmin(distances[m]))
        inner = brute_mic(box.positions[3 * m : 3 * m + 3] - box.positions[anchor], side)
        molecules.append(vectors[anchor] + inner)
    return molecules, closest


def _same_rows(a, b):
    """Whether two (n, 3) arrays hold the same rows in any order."""
    if a.shape != b.shape:
        return False
    order = lambda x: x[np.lexsort(np.round(x, 4).T[::-1])]  # noqa: E731
    return np.allclose(order(a), order(b), atol=1e-6)


def _centre_of(cluster, box):
    """The bulk atom that is atom 0 of a sphere cluster: the one whose molecule
    partners sit where the cluster's fragment 0 puts them (random rotations make
    it unique)."""
    own = cluster.positions[cluster.arrays["mbe_fragment"] == 0] - cluster.positions[0]
    side = box.cell[0, 0]
    found = [
        c
        for c in range(len(box))
        if box.numbers[c] == cluster.numbers[0]
        and _same_rows(
            brute_mic(box.positions[c // 3 * 3 : c // 3 * 3 + 3] - box.positions[c], side), own
        )
    ]
    assert len(found) == 1
    return found[0]


def test_sphere_keeps_the_whole_molecules_within_the_radius():
    box = water_box()
    straddling = np.ptp(box.positions.reshape(-1, 3, 3), axis=1).max(axis=1) > 2
    assert straddling.sum() >= 3  # the box tests unwrapping across the boundary
    radius = 4.0
    clusters = sample_clusters([box], "sphere", None, 12, seed=4, radius=radius, first_id=50)
    assert [c.info["mbe_parent"] for c in clusters] == list(range(50, 62))
    for cluster in clusters:
        assert not cluster.pbc.any() and not cluster.cell.any()
        assert np.allclose(cluster.positions.mean(axis=0), 0)
        assert cluster.info["regime"] == "water" and cluster.info["temperature"] == 300.0
        fragments = cluster.arrays["mbe_fragment"]
        n_molecules = int(fragments.max()) + 1
        # whole waters, contiguous, numbered 0 .. K-1 in order
        assert fragments.tolist() == np.repeat(np.arange(n_molecules), 3).tolist()
        relative = cluster.positions - cluster.positions[0]  # the centre atom is atom 0
        for k in range(n_molecules):
            water = cluster[fragments == k]
            oxygen = water.positions[water.numbers == 8]
            hydrogens = water.positions[water.numbers == 1]
            assert len(oxygen) == 1 and len(hydrogens) == 2
            assert np.allclose(np.linalg.norm(hydrogens - oxygen, axis=1), 0.9686, atol=1e-3)
        # closest atoms within the radius, closest molecules first
        closest = [
            np.linalg.norm(relative[fragments == k], axis=1).min() for k in range(n_molecules)
        ]
        assert max(closest) <= radius and closest == sorted(closest)
        # against brute force: exactly the molecules within the radius, unwrapped alike
        molecules, every = expected_sphere(box, _centre_of(cluster, box), radius)
        assert n_molecules == len(molecules) == (every <= radius).sum()
        assert np.sort(every)[n_molecules] > radius  # every omitted molecule is farther
        for k, expected in enumerate(molecules):
            assert _same_rows(relative[fragments == k], expected)
        # the numbering data/fragments.py finds on the cluster
        bare = cluster.copy()
        del bare.arrays["mbe_fragment"]
        assert assign_fragments(bare).tolist() == fragments.tolist()


def test_sphere_of_atoms_keeps_exactly_the_atoms_within_the_radius():
    box = water_box(seed=1)
    radius = 3.5
    side = box.cell[0, 0]
    clusters = sample_clusters([box], "sphere", None, 10, seed=2, radius=radius, bodies="atoms")
    for cluster in clusters:
        assert "mbe_fragment" not in cluster.arrays and not cluster.pbc.any()
        assert cluster.info["regime"] == "water"
        relative = cluster.positions - cluster.positions[0]
        distances = np.linalg.norm(relative, axis=1)
        assert distances.max() <= radius and distances.tolist() == sorted(distances)
        matches = []
        for c in np.flatnonzero(box.numbers == cluster.numbers[0]):
            vectors = brute_mic(box.positions - box.positions[c], side)
            inside = np.linalg.norm(vectors, axis=1) <= radius
            if inside.sum() == len(cluster) and _same_rows(vectors[inside], relative):
                matches.append(c)
                assert sorted(box.numbers[inside]) == sorted(cluster.numbers)
        assert len(matches) == 1


def test_sphere_sampling_is_seeded_and_distinct():
    box = water_box(n=3, seed=2)
    a = sample_clusters([box], "sphere", None, 20, seed=7, radius=3.5)
    b = sample_clusters([box], "sphere", None, 20, seed=7, radius=3.5)
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b))
    keys = {tuple(np.round(np.sort(c.get_all_distances().ravel()), 6)) for c in a}
    assert len(keys) == 20


def _chain(spacing, side):
    """Four carbon atoms on a line along x in a periodic cell of x-side ``side``."""
    positions = [[1 + k * spacing, 5, 5] for k in range(4)]
    return ase.Atoms("C4", positions=positions, cell=[side, 10, 10], pbc=True)


@pytest.mark.parametrize(
    "frame, message",
    [
        (_chain(1.4, 5.6), "spans more than half the cell or is bonded to its own periodic image"),
        (_chain(1.4, 7.0), "the molecule of atoms 0, 1, 2, 3 \\(4 atoms\\) spans more than half"),
    ],
)
def test_sphere_refuses_molecules_across_the_cell(frame, message):
    with pytest.raises(MBEInputError, match=message):
        sample_clusters([frame], "sphere", None, 1, radius=2.0)
    # cut as atoms, the frame is fine
    assert len(sample_clusters([frame], "sphere", None, 1, radius=2.0, bodies="atoms")) == 1


def test_sphere_refuses_two_images_of_a_molecule_and_too_few_bodies():
    # H2 at the origin, another whose two atoms are 2.7 and 2.6 Å from it on either side
    frame = ase.Atoms(
        "H4", positions=[[0, 0, 0], [0, 0.7, 0], [2.7, 0, 0], [3.4, 0, 0]], cell=[6] * 3, pbc=True
    )
    with pytest.raises(MBEInputError, match="meets two periodic images of the molecule of atom"):
        sample_clusters([frame], "sphere", None, 4, radius=3.0)
    with pytest.raises(MBEInputError, match="1 molecule within --radius 1 Å of atom"):
        sample_clusters([water_box(n=3)], "sphere", None, 1, radius=1.0)
    with pytest.raises(MBEInputError, match="1 atom within --radius 0.5 Å of atom"):
        sample_clusters([water_box(n=3)], "sphere", None, 1, radius=0.5, bodies="atoms")


def test_sphere_refuses_bonds_it_cannot_decide():
    first, second, third = molecule("H2O"), molecule("H2O"), molecule("H2O")
    along = first.positions[1] - first.positions[0]
    # the second water's O 1.3 Å from the first's H, along its O-H bond
    target = first.positions[1] + 1.3 * along / np.linalg.norm(along)
    second.positions += target - second.positions[0]
    third.positions += [0, 0, 4]
    frame = first + second + third
    frame.cell, frame.pbc = [10] * 3, True
    with pytest.raises(MBEInputError, match="atoms 1 \\(H\\) and 3 \\(O\\) are 1.300 Å apart"):
        sample_clusters([frame], "sphere", None, 1, radius=4.5)
    # a larger mult bonds them: the first two waters are one molecule
    (cluster,) = sample_clusters([frame], "sphere", None, 1, radius=4.5, mult=1.6)
    assert sorted(np.bincount(cluster.arrays["mbe_fragment"]).tolist()) == [3, 6]


@pytest.mark.parametrize(
    "protocol, size, options, message",
    [
        ("sphere", None, {}, "--radius: --protocol sphere needs a radius"),
        ("sphere", None, {"radius": 0.0}, "--radius: 0.0 is not a finite number > 0"),
        ("sphere", None, {"radius": -2.0}, "--radius: -2.0 is not a finite number > 0"),
        ("sphere", None, {"radius": float("nan")}, "--radius: nan is not a finite"),
        ("sphere", None, {"radius": float("inf")}, "--radius: inf is not a finite"),
        ("sphere", 8, {"radius": 3.0}, "--size: --protocol sphere takes no size"),
        ("sphere", None, {"radius": 3.0, "bodies": "bonds"}, "--bodies: 'bonds' is not one of"),
        ("sphere", None, {"radius": 3.0, "bodies": "atoms", "mult": 1.2}, "--mult: --bodies atoms"),
        ("sphere", None, {"radius": 3.0, "mult": 0.0}, "--mult: 0.0 is not a finite number > 0"),
        ("nearest", 8, {"radius": 3.0}, "--radius: only --protocol sphere takes it, not nearest"),
        ("pairs", 8, {"bodies": "atoms"}, "--bodies: only --protocol sphere takes it, not pairs"),
        ("pairs", 8, {"mult": 1.2}, "--mult: only --protocol sphere takes it, not pairs"),
    ],
)
def test_bad_sphere_options(protocol, size, options, message):
    with pytest.raises(MBEInputError, match=message):
        sample_clusters([water_box(n=3)], protocol, size, 1, **options)


def test_sphere_radius_beyond_half_the_cell_names_the_frame(tmp_path):
    ase.io.write(tmp_path / "box.xyz", [water_box(n=4), water_box(n=3)])
    frames = read_structures(tmp_path / "box.xyz")
    assert sample_clusters(frames, "sphere", None, 1, radius=4.65)  # 9.3 / 2: allowed
    with pytest.raises(
        MBEInputError,
        match=r"box.xyz:frame 1: --radius 4.7 Å is more than half the shortest perpendicular "
        r"width 9.300 Å of the cell: the sphere would see periodic images of itself",
    ):
        sample_clusters(frames, "sphere", None, 1, radius=4.7)
    skewed = ase.Atoms(
        "H2", positions=[[0, 0, 0], [1, 0, 0]], cell=[[6, 0, 0], [3, 1, 0], [0, 0, 6]]
    )
    skewed.pbc = True
    with pytest.raises(MBEInputError, match="shortest perpendicular width 1.000 Å"):
        sample_clusters([skewed], "sphere", None, 1, radius=0.6, bodies="atoms")
