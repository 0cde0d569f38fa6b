"""Wall-time overhead of `mtt-mbe train` over `mtt train` on its derived options.

Builds a small synthetic hydrogen data set (random 8-mers with Lennard-Jones
labels, complete sub-cluster sets for some), runs `mtt-mbe train` with
options/pet.yaml (shortened with -r), then `mtt train` on the derived options it
wrote, and prints both wall times. The MBE analysis is timed separately (it is
extra work, not overhead): run once with it and once without.

    OMP_NUM_THREADS=1 python benchmarks/train_overhead.py [--epochs 5]
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import enumerate_subclusters, isolated_atoms

ROOT = Path(__file__).resolve().parents[1]


def cluster(rng, n=8):
    positions = []
    while len(positions) < n:
        trial = rng.uniform(0.0, 2.4, size=3)
        if all(np.linalg.norm(trial - p) > 0.6 for p in positions):
            positions.append(trial)
    return ase.Atoms(f"H{n}", positions=positions)


def label(frames):
    for atoms in frames:
        atoms.calc = LennardJones(sigma=0.74, epsilon=0.2, rc=6.0, smooth=True)
        energy = atoms.get_potential_energy() - 13.6 * len(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=atoms.get_forces())
    return frames


def timed(command):
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--parents", type=int, default=200)
    parser.add_argument("--labelled", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    bin_dir = Path(shutil.which("mtt") or "mtt").parent
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        Path("data/hydrogen").mkdir(parents=True)
        parents = [cluster(rng) for _ in range(args.parents)]
        for k, atoms in enumerate(parents):
            atoms.info.update(mbe_parent=k, regime="low" if k % 2 else "high")
        ase.io.write("data/hydrogen/parents.xyz", label(parents), format="extxyz")
        subs = label(isolated_atoms(parents) + enumerate_subclusters(parents[: args.labelled]))
        ase.io.write("data/hydrogen/subclusters.xyz", subs, format="extxyz")
        common = [
            str(ROOT / "options/pet.yaml"),
            "-r",
            f"architecture.training.num_epochs={args.epochs}",
        ]
        runs = {
            "mtt-mbe train (analysis off)": [
                str(bin_dir / "mtt-mbe"),
                "train",
                *common,
                "-o",
                "a/model.pt",
                "-r",
                "mbe.analysis.enabled=false",
            ],
            "mtt train derived options": [
                str(bin_dir / "mtt"),
                "train",
                "a/model_options.yaml",
                "-o",
                str(Path("b/model.pt").absolute()),
            ],
            "mtt-mbe train (with analysis)": [
                str(bin_dir / "mtt-mbe"),
                "train",
                *common,
                "-o",
                "c/model.pt",
            ],
        }
        Path("b").mkdir()  # `mtt train -o` wants a bare name or an absolute path
        times = {name: timed(command) for name, command in runs.items()}
        for name, seconds in times.items():
            print(f"{name:32s} {seconds:7.1f} s")
        base = times["mtt train derived options"]
        print(f"overhead without analysis: {100 * (times[list(runs)[0]] / base - 1):+.1f} %")
        print(f"MBE analysis adds: {times[list(runs)[2]] - times[list(runs)[0]]:.1f} s")


if __name__ == "__main__":
    main()
