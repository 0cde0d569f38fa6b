"""Time the data preparation of `mtt-mbe train` at paper scale.

10 000 random 8-atom hydrogen parents (two regimes), complete labelled sub-cluster
sets (m = 2..7) for 400 of them (98 400 sub-clusters) and the isolated atom, with
synthetic labels, at proportion 1 (all sets injected). Runs the preparation twice
in one process, with the position checks of ``read_structures`` frame by frame
(``check_positions`` on each, the naive way) and screened for many small frames
at once (as the package does), and times each stage:

- read: ``read_structures`` on both input files, as ``prepare_run`` calls it:
  parsing (ase's extended-XYZ reader), then the position checks;
- prepare: the rest of ``prepare_run`` (split, injection, label checks);
- write: ``write_prepared``, the metatrain data sets and options;
- total: ``prepare_run`` + ``write_prepared``, the whole preparation.

    OMP_NUM_THREADS=1 python benchmarks/prepare_data.py [--parents 10000 --labelled 400]
"""

import argparse
import copy
import functools
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path
from unittest import mock

import ase
import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import assembly, enumerate_subclusters, isolated_atoms
from metatrain_mbe.data import io as mbe_io
from metatrain_mbe.interface.training import RunPaths, prepare_run, write_prepared

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def synthetic(n_parents, n_labelled, rng):
    parents = []
    corners = 1.5 * np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    for k in range(n_parents):
        # a jittered cube of side 1.5 Å: atoms at least 0.7 Å apart
        atoms = ase.Atoms("H8", positions=corners + rng.uniform(-0.2, 0.2, (8, 3)))
        atoms.info.update(mbe_parent=k, regime="low" if k % 2 else "high")
        parents.append(atoms)
    subs = isolated_atoms(parents) + enumerate_subclusters(parents[:n_labelled])
    for atoms in parents + subs:
        atoms.calc = SinglePointCalculator(
            atoms, energy=-13.6 * len(atoms) + rng.normal(), forces=rng.normal(size=(len(atoms), 3))
        )
    return parents, subs


def now():
    return {kind: clock() for kind, clock in CLOCKS.items()}


def since(start):
    return {kind: clock() - start[kind] for kind, clock in CLOCKS.items()}


def timed(function, spent):
    """``function``, adding the seconds of each call to ``spent``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = now()
        try:
            return function(*args, **kwargs)
        finally:
            for kind, seconds in since(start).items():
                spent[kind] += seconds

    return wrapper


def frame_by_frame(frames):
    for atoms in frames:
        mbe_io.check_positions(atoms)


def run(options, grouped_checks):
    """The stages of one preparation (seconds by clock), and the data sets."""
    reading = {kind: 0.0 for kind in CLOCKS}
    checking = {kind: 0.0 for kind in CLOCKS}
    paths = RunPaths.from_output(Path("out/model.pt"), "extensions")
    shutil.rmtree("out", ignore_errors=True)
    checks = mbe_io._check_frames if grouped_checks else frame_by_frame
    patches = [
        mock.patch.object(assembly, "read_structures", timed(mbe_io.read_structures, reading)),
        mock.patch.object(mbe_io, "_check_frames", timed(checks, checking)),
    ]
    for patch in patches:
        patch.start()
    try:
        start = now()
        prepared = prepare_run(options, paths)
        preparing = since(start)
        start = now()
        write_prepared(prepared, paths)
        writing = since(start)
    finally:
        for patch in patches:
            patch.stop()
    stages = {
        kind: {
            "parse": reading[kind] - checking[kind],
            "checks": checking[kind],
            "read": reading[kind],
            "prepare": preparing[kind] - reading[kind],
            "write": writing[kind],
            "total": preparing[kind] + writing[kind],
        }
        for kind in CLOCKS
    }
    files = {name: Path(paths.data / name).read_bytes() for name in prepared.files}
    return stages, {name: len(frames) for name, frames in prepared.files.items()}, files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parents", type=int, default=10_000)
    parser.add_argument("--labelled", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for name, n_parents, n_labelled in (
            ("warm-up", 200, 40),
            ("", args.parents, args.labelled),
        ):
            parents, subs = synthetic(n_parents, n_labelled, rng)
            ase.io.write(f"{name}parents.xyz", parents, format="extxyz")
            ase.io.write(f"{name}subclusters.xyz", subs, format="extxyz")
        print(f"{len(parents)} parents, {len(subs) - 1} sub-clusters + isolated atom")
        options = {
            "seed": 0,
            "architecture": {"name": "pet"},
            "training_set": {"systems": "parents.xyz", "targets": {"energy": {"unit": "eV"}}},
            "validation_set": 0.1,
            "test_set": 0.1,
            "mbe": {
                "subclusters": "subclusters.xyz",
                "proportion": 1.0,
                "stratify_by": "regime",
            },
        }
        # first calls import and set up (omegaconf, ase's formats, ...): untimed
        warm_up = copy.deepcopy(options)
        warm_up["training_set"]["systems"] = "warm-upparents.xyz"
        warm_up["mbe"]["subclusters"] = "warm-upsubclusters.xyz"
        for grouped in (False, True):
            run(warm_up, grouped)
        del parents, subs
        gc.collect()
        naive, counts, naive_files = run(options, grouped_checks=False)
        gc.collect()
        grouped, _, files = run(options, grouped_checks=True)
        print(f"prepared {counts}; same data sets written both ways: {naive_files == files}")
        stages = list(naive["cpu"])
        print(f"{'':20}" + "".join(f"{stage:>9}" for stage in stages))
        for kind in CLOCKS:
            for name, seconds in (("frame by frame", naive[kind]), ("grouped", grouped[kind])):
                print(f"{kind + ' ' + name:20}" + "".join(f"{seconds[s]:9.2f}" for s in stages))
            ratio = "".join(f"{naive[kind][s] / max(grouped[kind][s], 1e-9):9.2f}" for s in stages)
            print(f"{kind + ' ratio':20}" + ratio)


if __name__ == "__main__":
    main()
