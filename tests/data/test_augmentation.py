import math

import ase
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metatrain_mbe import MBEInputError
from metatrain_mbe.data.augmentation import (
    choose_injected_parents,
    injected_subclusters,
    subcluster_sets,
)
from metatrain_mbe.data.splitting import split_parents
from metatrain_mbe.data.subclusters import enumerate_subclusters


def parents(n, n_atoms=5, regimes=("low", "high", "high")):
    rng = np.random.default_rng(0)
    frames = []
    for k in range(n):
        atoms = ase.Atoms(f"H{n_atoms}", positions=rng.uniform(0, 3, (n_atoms, 3)))
        atoms.info.update(mbe_parent=k, regime=regimes[k % len(regimes)])
        frames.append(atoms)
    return frames


SET_SIZE = sum(math.comb(5, m) for m in range(2, 5))  # 30 sub-clusters per 5-atom parent


def test_sets_are_complete_and_ordered():
    frames = parents(3)
    sets = subcluster_sets(enumerate_subclusters(frames)[::-1], frames)
    assert sorted(sets) == [0, 1, 2]
    keys = [(len(a), tuple(a.info["mbe_atoms"])) for a in sets[1]]
    assert len(keys) == SET_SIZE and keys == sorted(keys)
    only = subcluster_sets(enumerate_subclusters(frames), frames, orders=[2, 4])
    assert {len(a) for a in only[0]} == {2, 4}


def test_requesting_more_than_is_labelled_is_an_error():
    frames = parents(2)
    subs = enumerate_subclusters(frames, orders=[2, 3])
    with pytest.raises(MBEInputError, match="0 of 5 sub-clusters of order 4 are labelled"):
        subcluster_sets(subs, frames)
    assert len(subcluster_sets(subs, frames, orders=[2, 3])[0]) == 20
    with pytest.raises(MBEInputError, match="9 of 10 sub-clusters of order 2"):
        subcluster_sets(subs[1:], frames, orders=[2, 3])


def test_subcluster_without_parent_and_duplicates_are_errors():
    frames = parents(3)
    subs = enumerate_subclusters(frames)
    with pytest.raises(MBEInputError, match="mbe_parent'=2 names no parent"):
        subcluster_sets(subs, frames[:2])
    with pytest.raises(MBEInputError, match="duplicate"):
        subcluster_sets(subs + subs[:1], frames)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    proportion=st.floats(0.0, 1.0),
    n=st.integers(4, 30),
    stratify=st.sampled_from([None, "regime"]),
)
def test_injected_count_matches_the_proportion_within_one_set(seed, proportion, n, stratify):
    frames = parents(n)
    sets = subcluster_sets(enumerate_subclusters(frames), frames)
    if 0 < proportion * n < 0.5:
        with pytest.raises(MBEInputError, match="selects no complete set"):
            choose_injected_parents(
                sets, frames, proportion=proportion, seed=seed, stratify_by=stratify
            )
        return
    chosen = choose_injected_parents(
        sets, frames, proportion=proportion, seed=seed, stratify_by=stratify
    )
    injected = injected_subclusters(sets, chosen)
    available = n * SET_SIZE
    assert abs(len(injected) - proportion * available) <= SET_SIZE
    per_parent = {pid: 0 for pid in chosen}
    for atoms in injected:
        per_parent[atoms.info["mbe_parent"]] += 1
    assert set(per_parent.values()) <= {SET_SIZE}  # complete sets only
    if stratify:
        for regime in ("low", "high"):
            group = [a.info["mbe_parent"] for a in frames if a.info["regime"] == regime]
            share = len(set(group) & set(chosen))
            assert abs(share - proportion * len(group)) < 1


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    proportion=st.floats(0.1, 1.0),
    validation=st.floats(0.05, 0.4),
    stratify=st.sampled_from([None, "regime"]),
)
def test_no_subcluster_of_a_held_out_parent_is_injected(seed, proportion, validation, stratify):
    frames = parents(24)
    sets = subcluster_sets(enumerate_subclusters(frames), frames)
    split = split_parents(
        frames,
        {"validation": validation, "test": 0.1},
        seed=seed,
        stratify_by=stratify,
        labelled=sets,
    )
    train = [a for a in frames if a.info["mbe_parent"] in split["train"]]
    train_sets = {pid: sets[pid] for pid in split["train"]}
    chosen = choose_injected_parents(
        train_sets, train, proportion=proportion, seed=seed, stratify_by=stratify
    )
    injected = {a.info["mbe_parent"] for a in injected_subclusters(train_sets, chosen)}
    assert injected <= set(split["train"])
    assert not injected & (set(split["validation"]) | set(split["test"]))


def test_same_seed_same_choice_and_nothing_when_proportion_is_zero():
    frames = parents(20)
    sets = subcluster_sets(enumerate_subclusters(frames), frames)
    first = choose_injected_parents(sets, frames, proportion=0.3, seed=4, stratify_by="regime")
    assert first == choose_injected_parents(
        sets, frames, proportion=0.3, seed=4, stratify_by="regime"
    )
    assert choose_injected_parents(sets, frames, proportion=0.0, seed=4) == []
    assert choose_injected_parents(sets, frames, proportion=1.0, seed=4) == list(range(20))


def test_proportion_without_labelled_parents_is_an_error():
    frames = parents(3)
    with pytest.raises(MBEInputError, match="no training parent has labelled sub-clusters"):
        choose_injected_parents({}, frames, proportion=0.5, seed=0)


def molecular_parents(n, n_molecules=4):
    """Parents of H2 molecules 3 Å apart, declared as fragments."""
    frames = []
    for k in range(n):
        positions = [[3.0 * i, 0.1 * k, z] for i in range(n_molecules) for z in (0.0, 0.74)]
        atoms = ase.Atoms(f"H{2 * n_molecules}", positions=positions)
        atoms.arrays["mbe_fragment"] = np.repeat(np.arange(n_molecules), 2)
        atoms.info.update(mbe_parent=k)
        frames.append(atoms)
    return frames


def test_fragment_sets_hold_whole_molecules_from_single_ones_up():
    frames = molecular_parents(2)
    sets = subcluster_sets(enumerate_subclusters(frames)[::-1], frames)
    # 4 single molecules, 6 pairs, 4 triples per parent, each a union of whole H2
    assert [len(sets[k]) for k in (0, 1)] == [14, 14]
    assert [a.info["mbe_order"] for a in sets[0]] == [1] * 4 + [2] * 6 + [3] * 4
    assert all(len(a) == 2 * a.info["mbe_order"] for a in sets[0])
    pairs = subcluster_sets(enumerate_subclusters(frames), frames, orders=[2])
    assert [len(pairs[k]) for k in (0, 1)] == [6, 6]
    without_a_molecule = [a for a in enumerate_subclusters(frames) if a.info["mbe_order"] > 1]
    with pytest.raises(MBEInputError, match="0 of 4 sub-clusters of order 1 are labelled"):
        subcluster_sets(without_a_molecule, frames)
