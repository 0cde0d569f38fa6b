"""The water-cluster data the package ships (data/water/): what the README there
promises, molecules as bodies (``mbe_fragment``), and a sane reference
many-body expansion over whole waters."""

import itertools
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from metatrain_mbe.data import read_structures
from metatrain_mbe.data.io import get_energy, get_forces

DATA = Path(__file__).parents[2] / "data" / "water"
LEVEL = "PySCF UKS pbe/6-31g*, 2S=0, no smearing, grid level 1"
SIZES = (4, 5, 6)
#: what is committed at least (make.sh grows it to 100 parents and 8 sets per size)
MIN_PARENTS_PER_SIZE = 50
MIN_SETS_PER_SIZE = 5

pytestmark = pytest.mark.skipif(
    not (DATA / "parents.xyz.gz").exists(), reason="data/water/make.sh has not run"
)


@pytest.fixture(scope="module")
def parents():
    return read_structures(DATA / "parents.xyz.gz")


@pytest.fixture(scope="module")
def sets():
    """{parent id: (parent, {atom indices: sub-cluster})} of subclusters.xyz.gz."""
    groups = defaultdict(lambda: [None, {}])
    for atoms in read_structures(DATA / "subclusters.xyz.gz"):
        group = groups[int(atoms.info["mbe_parent"])]
        if "mbe_atoms" in atoms.info:
            group[1][tuple(int(i) for i in atoms.info["mbe_atoms"])] = atoms
        else:
            assert group[0] is None, "two parents with one id"
            group[0] = atoms
    return dict(groups)


def waters(atoms):
    """{fragment id: atom indices} of a structure."""
    out = defaultdict(list)
    for i, f in enumerate(atoms.arrays["mbe_fragment"]):
        out[int(f)].append(i)
    return out


def check_waters(atoms):
    """Each fragment is one water: O, H, H, both H bonded to their own O
    (0.85-1.1 Å) and nearer to it than to any other O."""
    oxygens = np.flatnonzero(atoms.numbers == 8)
    for indices in waters(atoms).values():
        assert sorted(atoms.numbers[indices]) == [1, 1, 8]
        o = next(i for i in indices if atoms.numbers[i] == 8)
        for h in (i for i in indices if i != o):
            d = atoms.get_distances(h, oxygens)
            assert 0.85 < atoms.get_distance(h, o) < 1.1
            assert oxygens[np.argmin(d)] == o


def test_the_level_of_theory_is_recorded_and_is_make_sh_s(parents, sets):
    make = (DATA / "make.sh").read_text()
    assert "xc=pbe basis='6-31g*' grid=1" in make and "--smearing 0" in make
    assert {a.info["level"] for a in parents} == {LEVEL}
    assert {a.info["level"] for p, subs in sets.values() for a in [p, *subs.values()]} == {LEVEL}


def test_parents_are_distinct_labelled_water_clusters(parents):
    sizes = Counter(int(a.info["n_water"]) for a in parents)
    assert set(sizes) == set(SIZES)
    assert min(sizes.values()) >= MIN_PARENTS_PER_SIZE
    assert max(sizes.values()) - min(sizes.values()) <= 10  # added 10 per size at a time
    ids = [int(a.info["mbe_parent"]) for a in parents]
    assert len(set(ids)) == len(ids)
    assert len({np.round(a.positions, 6).tobytes() for a in parents}) == len(parents)
    for atoms in parents:
        n = int(atoms.info["n_water"])
        assert 100 * (n - 4) <= int(atoms.info["mbe_parent"]) < 100 * (n - 3)  # id blocks
        assert len(atoms) == 3 * n and not atoms.pbc.any()
        assert atoms.arrays["mbe_fragment"].tolist() == np.repeat(np.arange(n), 3).tolist()
        check_waters(atoms)
        energy, forces = get_energy(atoms), get_forces(atoms)
        assert -2080 * n < energy < -2070 * n  # about -2076.7 eV per water
        assert forces.shape == (3 * n, 3) and np.abs(forces).max() < 20


def test_complete_sets_of_whole_waters(parents, sets):
    by_id = {int(a.info["mbe_parent"]): a for a in parents}
    sizes = Counter()
    for pid, (parent, subs) in sets.items():
        assert parent is not None
        n = len(parent) // 3
        sizes[n] += 1
        # the parent is the one of parents.xyz.gz, with the same label
        shipped = by_id[pid]
        assert np.array_equal(parent.positions, shipped.positions)
        assert get_energy(parent) == pytest.approx(get_energy(shipped), abs=1e-6)
        molecules = list(waters(parent).values())
        expected = {
            tuple(sorted(i for m in combo for i in m))
            for m in range(1, n)
            for combo in itertools.combinations(molecules, m)
        }
        assert set(subs) == expected  # every union of 1 .. n-1 waters, once
        for key, atoms in subs.items():
            assert int(atoms.info["mbe_order"]) == len(key) // 3
            assert np.array_equal(atoms.positions, parent.positions[list(key)])
            assert np.array_equal(
                atoms.arrays["mbe_fragment"], parent.arrays["mbe_fragment"][list(key)]
            )
            assert np.isfinite(get_energy(atoms)) and np.isfinite(get_forces(atoms)).all()
    assert set(sizes) == set(SIZES) and min(sizes.values()) >= MIN_SETS_PER_SIZE
    assert max(sizes.values()) - min(sizes.values()) <= 1  # added one per size at a time


def test_reference_mbe_over_waters_is_two_body_dominated(sets):
    # V(S) by Möbius inversion over whole waters; per parent, the sum of V over
    # the m-water subsets. Hydrogen bonds bind: the 2-body sum is negative and
    # the largest; 3-body is cooperative (negative) and smaller; the rest small.
    for pid, (parent, subs) in sets.items():
        energies = {key: get_energy(a) for key, a in subs.items()}
        energies[tuple(range(len(parent)))] = get_energy(parent)
        molecules = list(waters(parent).values())
        n = len(molecules)
        terms = defaultdict(float)
        for m in range(1, n + 1):
            for combo in itertools.combinations(range(n), m):
                v = 0.0
                for k in range(1, m + 1):
                    for sub in itertools.combinations(combo, k):
                        key = tuple(sorted(i for j in sub for i in molecules[j]))
                        v += (-1) ** (m - k) * energies[key]
                terms[m] += v
        assert sum(terms.values()) == pytest.approx(get_energy(parent), abs=1e-6)
        assert -0.5 * n < terms[2] < -0.1 * n, (pid, dict(terms))  # eV, a few H-bonds
        assert terms[3] < 0 and abs(terms[3]) < abs(terms[2]) / 2, (pid, dict(terms))
        assert all(abs(terms[m]) < abs(terms[3]) for m in range(4, n + 1)), (pid, dict(terms))
