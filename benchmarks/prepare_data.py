"""Time the data preparation of `mtt-mbe train` at paper scale.

10 000 random 8-atom hydrogen parents (two regimes), complete labelled sub-cluster
sets (m = 2..7) for 400 of them (98 400 sub-clusters) and the isolated atom, with
synthetic labels. Times reading, preparing (split, injection, checks) and writing
the metatrain data sets, at proportion 1 (all sets injected), and where the time
goes: ase's extended-XYZ parser, the checks of ``read_structures`` on each frame,
the split and injection, and the writing.

    OMP_NUM_THREADS=1 python benchmarks/prepare_data.py [--parents 10000 --labelled 400]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import enumerate_subclusters, isolated_atoms, read_structures
from metatrain_mbe.interface.training import RunPaths, prepare_run, write_prepared


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parents", type=int, default=10_000)
    parser.add_argument("--labelled", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        parents, subs = synthetic(args.parents, args.labelled, rng)
        ase.io.write("parents.xyz", parents, format="extxyz")
        ase.io.write("subclusters.xyz", subs, format="extxyz")
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
        paths = RunPaths.from_output(Path("out/model.pt"), "extensions")
        clock = {"wall": time.perf_counter, "cpu": time.process_time}
        parse = {}
        for name in ("parents.xyz", "subclusters.xyz"):
            start = {kind: now() for kind, now in clock.items()}
            ase.io.read(name, index=":", format="extxyz")
            parse[name] = {kind: now() - start[kind] for kind, now in clock.items()}
        marks = [{kind: now() for kind, now in clock.items()}]
        for name in ("parents.xyz", "subclusters.xyz"):
            read_structures(name)
        marks.append({kind: now() for kind, now in clock.items()})
        prepared = prepare_run(options, paths)
        marks.append({kind: now() for kind, now in clock.items()})
        write_prepared(prepared, paths)
        marks.append({kind: now() for kind, now in clock.items()})
        counts = {name: len(frames) for name, frames in prepared.files.items()}
        print(f"prepared {counts}")
        for kind in clock:
            reading, preparing, writing = (b[kind] - a[kind] for a, b in zip(marks, marks[1:]))
            ase_parse = sum(seconds[kind] for seconds in parse.values())
            print(
                f"{kind}: read + prepare {preparing:.2f} s, write {writing:.2f} s, "
                f"total {preparing + writing:.2f} s; of which ase's extxyz parser "
                f"{ase_parse:.2f} s (sub-clusters {parse['subclusters.xyz'][kind]:.2f}), "
                f"read_structures' checks {reading - ase_parse:.2f} s, split + injection "
                f"{preparing - reading:.2f} s (each file read once)"
            )


if __name__ == "__main__":
    main()
