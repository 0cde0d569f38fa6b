"""Time the data preparation of `mtt-mbe train` at paper scale.

10 000 random 8-atom hydrogen parents (two regimes), complete labelled sub-cluster
sets (m = 2..7) for 400 of them (98 400 sub-clusters) and the isolated atom, with
synthetic labels. Times reading, preparing (split, injection, checks) and writing
the metatrain data sets, at proportion 1 (all sets injected).

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

from metatrain_mbe.data import enumerate_subclusters, isolated_atoms
from metatrain_mbe.interface.training import RunPaths, prepare_run, write_prepared


def synthetic(n_parents, n_labelled, rng):
    parents = []
    for k in range(n_parents):
        atoms = ase.Atoms("H8", positions=rng.uniform(0.0, 3.0, (8, 3)))
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
        start = time.perf_counter()
        prepared = prepare_run(options, paths)
        middle = time.perf_counter()
        write_prepared(prepared, paths)
        end = time.perf_counter()
        counts = {name: len(frames) for name, frames in prepared.files.items()}
        print(f"prepared {counts}")
        print(
            f"read + prepare: {middle - start:.2f} s, write: {end - middle:.2f} s, "
            f"total: {end - start:.2f} s"
        )


if __name__ == "__main__":
    main()
