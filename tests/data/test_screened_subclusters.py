"""Screened families from structures: body distances, enumeration, injection.

* ``body_pairs`` gives, for molecules, the distance of their closest atoms
  (brute force over all atom pairs), from one neighbour list;
* ``enumerate_subclusters`` with cutoffs writes the family of ``parent_plan``;
* augmentation with ``mbe.cutoff`` takes a set as complete when it holds the
  screened family, drops labelled sub-clusters outside it, and names a missing
  one as missing from the screened family.
"""

import itertools

import ase
import numpy as np
import pytest

from metatrain_mbe.cutoffs import Cutoffs
from metatrain_mbe.data import (
    assign_parent_ids,
    body_pairs,
    enumerate_subclusters,
    parent_plan,
    parse_cutoffs,
)
from metatrain_mbe.data.augmentation import subcluster_sets
from metatrain_mbe.errors import MBEInputError


def molecules(n: int, seed: int) -> ase.Atoms:
    """``n`` rigid triatomic molecules (O H H) at random, ``mbe_fragment`` set."""
    rng = np.random.default_rng(seed)
    side = (n / 0.03) ** (1 / 3)
    atoms = ase.Atoms()
    for _ in range(n):
        centre = rng.uniform(0, side, 3)
        atoms += ase.Atoms(
            "OH2", positions=centre + np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
        )
    atoms.arrays["mbe_fragment"] = np.repeat(np.arange(n), 3)
    return atoms


def test_molecule_distance_is_that_of_their_closest_atoms():
    cluster = molecules(12, seed=0)
    pairs, distances = body_pairs(cluster, 6.0)
    d = cluster.get_all_distances()
    frag = cluster.arrays["mbe_fragment"]
    expected = {}
    for i, j in itertools.combinations(range(12), 2):
        closest = d[np.ix_(frag == i, frag == j)].min()
        if closest < 6.0:
            expected[(i, j)] = closest
    found = {tuple(p): float(r) for p, r in zip(pairs.tolist(), distances)}
    assert set(found) == set(expected)
    assert all(found[k] == pytest.approx(expected[k], abs=1e-12) for k in expected)


def test_enumeration_writes_the_screened_family():
    (cluster,) = assign_parent_ids([molecules(15, seed=1)])
    cutoffs = Cutoffs.parse("4.0")
    subs = enumerate_subclusters([cluster], [1, 2, 3], cutoffs)
    plan = parent_plan(cluster, 3, cutoffs=cutoffs)
    assert len(subs) == sum(plan.kept(m) for m in (1, 2, 3)) < 15 + 105 + 455
    d = cluster.get_all_distances()
    frag = cluster.arrays["mbe_fragment"]
    for sub in subs:
        bodies = sorted(set(frag[sub.info["mbe_atoms"]]))
        assert len(bodies) == sub.info["mbe_order"]
        for i, j in itertools.combinations(bodies, 2):
            assert d[np.ix_(frag == i, frag == j)].min() <= 4.0


@pytest.mark.parametrize(
    "text, message",
    [("-2", "positive"), ("x", "is not a cutoff"), ("3:4,3:5", "twice"), ("2:3,3:4", "grow")],
)
def test_bad_cutoffs_name_the_option(text, message):
    with pytest.raises(MBEInputError, match=f"^--cutoff: .*{message}"):
        parse_cutoffs(text)


def atoms_cluster(n: int, seed: int) -> ase.Atoms:
    rng = np.random.default_rng(seed)
    return ase.Atoms("H" * n, positions=rng.uniform(0, 6.0, size=(n, 3)))


def test_injected_sets_are_complete_with_respect_to_the_screened_family():
    parents = assign_parent_ids([atoms_cluster(9, seed=s) for s in range(2)])
    everything = enumerate_subclusters(parents, [2, 3])
    cutoffs = Cutoffs.parse("3.0")
    sets = subcluster_sets(everything, parents, [2, 3], cutoffs)
    for parent in parents:
        plan = parent_plan(parent, 3, cutoffs=cutoffs)
        chosen = sets[int(parent.info["mbe_parent"])]
        assert len(chosen) == plan.kept(2) + plan.kept(3) < len(everything) / 2
    # the screened family alone is complete; one trimer less is not
    screened = enumerate_subclusters(parents, [2, 3], cutoffs)
    assert subcluster_sets(screened, parents, [2, 3], cutoffs).keys() == sets.keys()
    trimer = next(k for k, s in enumerate(screened) if s.info["mbe_order"] == 3)
    with pytest.raises(MBEInputError, match="of the screened family"):
        subcluster_sets(screened[:trimer] + screened[trimer + 1 :], parents, [2, 3], cutoffs)
    with pytest.raises(MBEInputError, match="sub-clusters of order 2 are labelled"):
        subcluster_sets(screened, parents, [2, 3])  # without the cutoff: incomplete
