import numpy as np
import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.data.bulk import density, hydrogen_bulk
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
