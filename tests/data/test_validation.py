"""Hostile input on the data side: each is refused at once with one line
naming the file, the frame and the field."""

import re
import time

import ase
import ase.io
import numpy as np
import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import enumerate_subclusters, read_structures
from metatrain_mbe.data.assembly import DataRequest, assemble_training_data
from metatrain_mbe.data.bulk import hydrogen_bulk
from metatrain_mbe.data.io import MIN_DISTANCE, parent_id, subcluster_atoms
from metatrain_mbe.data.sampling import sample_clusters
from metatrain_mbe.interface.options import EvalOptions, parse_options

from ..conftest import hydrogen_cluster


def write(path, frames):
    ase.io.write(path, frames, format="extxyz")
    return path


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_positions_are_refused_on_read(tmp_path, value):
    bad = hydrogen_cluster(4, seed=1)
    bad.positions[2, 1] = value
    path = write(tmp_path / "parents.xyz", [hydrogen_cluster(4), bad])
    with pytest.raises(MBEInputError) as error:
        read_structures(path)
    assert one_line(error) == (f"{path}:frame 1: field 'positions' is not finite for atoms [2]")


def test_coincident_atoms_are_refused_on_read(tmp_path):
    bad = hydrogen_cluster(5, seed=2)
    bad.positions[3] = bad.positions[1] + [0.0, 0.0, 0.5 * MIN_DISTANCE]
    bad.info["mbe_parent"] = 7
    path = write(tmp_path / "parents.xyz", [bad])
    with pytest.raises(MBEInputError) as error:
        read_structures(path)
    message = one_line(error)
    assert message.startswith(
        f"{path}:frame 0 (mbe_parent=7): field 'positions' puts atoms 1 and 3"
    )
    assert f"closer than {MIN_DISTANCE} Å" in message


def test_coincident_atoms_across_a_periodic_boundary_are_refused(tmp_path):
    frame = hydrogen_bulk("high", n_atoms=16, seed=0)
    frame.positions[5] = frame.positions[2] + frame.cell[0] - [0.01, 0.0, 0.0]
    path = write(tmp_path / "bulk.xyz", [frame])
    with pytest.raises(
        MBEInputError, match=r"bulk.xyz:frame 0: field 'positions' puts atoms 2 and 5"
    ):
        read_structures(path)


def test_a_degenerate_periodic_cell_is_refused_on_read(tmp_path):
    frame = hydrogen_bulk("high", n_atoms=16, seed=0)
    frame.cell[2] = 0.0
    path = write(tmp_path / "flat.xyz", [frame])
    with pytest.raises(MBEInputError, match="flat.xyz:frame 0: field 'cell' is degenerate"):
        read_structures(path)


def test_sound_files_read_unchanged(tmp_path, lj_dataset):
    path = write(tmp_path / "all.xyz", lj_dataset)
    frames = read_structures(path)
    assert len(frames) == len(lj_dataset)
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(frames, lj_dataset))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"mbe_parent": 1.5}, "field 'mbe_parent' is not an integer (got 1.5)"),
        ({"mbe_atoms": np.array([-1, 0])}, "field 'mbe_atoms' must list 2 distinct ascending"),
    ],
)
def test_bad_ids_are_refused(tmp_path, change, message):
    pair = hydrogen_cluster(2)
    pair.info.update({"mbe_parent": 1, "mbe_atoms": np.array([0, 1]), **change})
    (atoms,) = read_structures(write(tmp_path / "subs.xyz", [pair]))
    with pytest.raises(MBEInputError, match=re.escape(message)):
        parent_id(atoms)
        subcluster_atoms(atoms)


def test_subclusters_of_a_large_parent_are_refused_at_once():
    parent = hydrogen_cluster(30, seed=3)
    parent.info["mbe_parent"] = 0
    start = time.perf_counter()
    with pytest.raises(
        MBEInputError,
        match=re.escape(
            "30 bodies up to order 29 give 1073741822 sub-clusters without screening "
            "(limit 1048576); lower the largest order (--max-order, --orders) or screen "
            "with --cutoff"
        ),
    ):
        enumerate_subclusters([parent])
    assert time.perf_counter() - start < 1
    assert len(enumerate_subclusters([parent], orders=[2])) == 435  # small orders still fine


@pytest.mark.parametrize(
    "size, count, message",
    [
        (-3, 5, "--size: -3 atoms; a cluster has at least 2"),
        (0, 5, "--size: 0 atoms"),
        (1, 5, "--size: 1 atoms"),
        (4, 0, "--count: 0; sample at least 1 cluster"),
        (4, 1000, "--count: 1000 clusters but the 2 frames of .*bulk.xyz have 32 atoms"),
    ],
)
def test_bad_sample_requests_are_refused_at_once(tmp_path, size, count, message):
    frames = [hydrogen_bulk("high", n_atoms=16, seed=k) for k in range(2)]
    frames = read_structures(write(tmp_path / "bulk.xyz", frames))
    start = time.perf_counter()
    with pytest.raises(MBEInputError, match=message):
        sample_clusters(frames, "nearest", size, count)
    assert time.perf_counter() - start < 1


def test_sampling_stops_when_the_frames_have_no_more_distinct_clusters():
    # every atom of a 2-atom frame gives the same pair: one distinct cluster
    frame = hydrogen_bulk("high", n_atoms=2, seed=0)
    assert len(sample_clusters([frame], "nearest", 2, 1)) == 1
    with pytest.raises(MBEInputError, match="give only 1 distinct ones"):
        sample_clusters([frame], "nearest", 2, 2)


@pytest.mark.parametrize(
    "regime, atoms, message",
    [
        ("high", 0, "--atoms: 0 atoms per frame; a frame needs at least 2"),
        ("high", 1, "--atoms: 1 atoms per frame"),
        ("high", -5, "--atoms: -5 atoms per frame"),
        ("low", 7, "--atoms: 7 is odd"),
        ("medium", 8, "--regime: 'medium' is not one of low, high"),
    ],
)
def test_bad_bulk_requests_are_refused(regime, atoms, message):
    with pytest.raises(MBEInputError, match=message):
        hydrogen_bulk(regime, n_atoms=atoms)


@pytest.mark.parametrize(
    "e1, message",
    [
        ({"H": "nan"}, "mbe.e1: Value error, H=nan is not a finite energy"),
        ({"H": float("inf")}, "mbe.e1: Value error, H=inf is not a finite energy"),
        ({"Xx": 1.0}, "mbe.e1: Value error, 'Xx' is not a chemical symbol"),
    ],
)
@pytest.mark.parametrize("model", [None, EvalOptions])
def test_bad_e1_options_are_refused(e1, message, model):
    extra = {} if model is None else {"model": model}
    with pytest.raises(MBEInputError, match=f"^options.yaml: {message}"):
        parse_options({"e1": e1}, "options.yaml", **extra)


# -- the data sets of a training run ----------------------------------------------


def _request(training, *subclusters):
    return DataRequest(
        training_file=training, fractions={"validation": 0.34}, subcluster_files=list(subclusters)
    )


def _parents_and_rest(frames):
    parents = [a for a in frames if len(a) > 1 and "mbe_atoms" not in a.info]
    return parents, [a for a in frames if a not in parents]


def test_one_file_holds_parents_and_subclusters(tmp_path, lj_dataset):
    """`subclusters --with-parents` then `label` gives one file: it may be both the
    training set and mbe.subclusters (or the training set alone)."""
    parents, rest = _parents_and_rest(lj_dataset)
    apart = assemble_training_data(
        _request(write(tmp_path / "parents.xyz", parents), write(tmp_path / "subs.xyz", rest))
    )
    together = write(tmp_path / "labelled.xyz", lj_dataset)
    for request in (_request(together, together), _request(together)):
        data = assemble_training_data(request)
        assert data.split == apart.split
        assert {name: len(frames) for name, frames in data.files.items()} == {
            name: len(frames) for name, frames in apart.files.items()
        }
        assert len(data.files["train_subclusters.xyz"]) == 56 * len(data.split["train"])
        assert len(data.isolated) == 1


def test_a_parent_without_energy_is_refused_before_training(tmp_path, lj_dataset):
    parents, rest = _parents_and_rest(lj_dataset)
    parents[1].calc = None
    path = write(tmp_path / "parents.xyz", parents)
    with pytest.raises(MBEInputError) as error:
        assemble_training_data(_request(path, write(tmp_path / "subs.xyz", rest)))
    assert one_line(error) == f"{path}:frame 1 (mbe_parent=1): field 'energy' is missing"


@pytest.mark.parametrize("label", ["energy", "forces"])
def test_a_non_finite_subcluster_label_is_refused_before_training(tmp_path, lj_dataset, label):
    parents, rest = _parents_and_rest(lj_dataset)
    frame = next(k for k, a in enumerate(rest) if len(a) == 3)
    results = rest[frame].calc.results
    if label == "energy":
        results["energy"] = np.nan
    else:
        results["forces"][2, 0] = np.inf
    path = write(tmp_path / "subs.xyz", rest)
    with pytest.raises(MBEInputError) as error:
        assemble_training_data(_request(write(tmp_path / "parents.xyz", parents), path))
    message = one_line(error)
    assert message.startswith(f"{path}:frame {frame} (mbe_parent=")
    assert f"field '{label}' is" in message
