import ase
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metatrain_mbe import MBEInputError
from metatrain_mbe.data.splitting import SPLITS, route_by_parent, split_parents
from metatrain_mbe.data.subclusters import enumerate_subclusters


def parents(n, regimes=("low", "high")):
    frames = []
    for k in range(n):
        atoms = ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 0.8], [0, 0.9, 0]])
        atoms.info.update(mbe_parent=1000 + k, regime=regimes[k % len(regimes)])
        frames.append(atoms)
    return frames


def test_every_parent_lands_in_exactly_one_split():
    frames = parents(50)
    split = split_parents(frames, {"validation": 0.1, "test": 0.2}, seed=3)
    ids = [pid for name in SPLITS for pid in split[name]]
    assert sorted(ids) == [1000 + k for k in range(50)]
    assert len(split["validation"]) == 5 and len(split["test"]) == 10


def test_stratification_gives_each_regime_its_share():
    frames = parents(40, regimes=("low", "low", "low", "high"))  # 30 low, 10 high
    split = split_parents(frames, {"validation": 0.2, "test": 0.1}, seed=0, stratify_by="regime")
    regime = {a.info["mbe_parent"]: a.info["regime"] for a in frames}
    val = [regime[pid] for pid in split["validation"]]
    assert val.count("low") == 6 and val.count("high") == 2
    test = [regime[pid] for pid in split["test"]]
    assert test.count("low") == 3 and test.count("high") == 1


def test_labelled_parents_are_split_as_their_own_group():
    frames = parents(100)
    labelled = {1000 + k for k in range(10)}
    split = split_parents(frames, {"validation": 0.1, "test": 0.1}, seed=5, labelled=labelled)
    assert len(labelled & set(split["validation"])) == 1
    assert len(labelled & set(split["test"])) == 1


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    frames = parents(60)
    first = split_parents(frames, {"validation": 0.2}, seed=1)
    assert first == split_parents(list(reversed(frames)), {"validation": 0.2}, seed=1)
    assert first != split_parents(frames, {"validation": 0.2}, seed=2)


def test_missing_stratification_key_and_empty_training_are_errors():
    frames = parents(10)
    del frames[3].info["regime"]
    with pytest.raises(MBEInputError, match="field 'regime' .mbe.stratify_by. is missing"):
        split_parents(frames, {"validation": 0.1}, seed=0, stratify_by="regime")
    with pytest.raises(MBEInputError, match="leave no training parent"):
        split_parents(frames, {"validation": 0.5, "test": 0.5}, seed=0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    validation=st.floats(0.05, 0.45),
    test=st.floats(0.0, 0.45),
    stratify=st.sampled_from([None, "regime"]),
)
def test_subclusters_follow_their_parent(seed, validation, test, stratify):
    frames = parents(12)
    split = split_parents(
        frames, {"validation": validation, "test": test}, seed=seed, stratify_by=stratify
    )
    routed = route_by_parent(enumerate_subclusters(frames), split)
    for name in SPLITS:
        assert {a.info["mbe_parent"] for a in routed[name]} <= set(split[name])


def test_a_structure_without_parent_in_any_split_is_an_error():
    frames = parents(4)
    split = split_parents(frames[:3], {"validation": 0.3}, seed=0)
    with pytest.raises(MBEInputError, match="mbe_parent'=1003 names no parent"):
        route_by_parent(enumerate_subclusters(frames), split)
