"""Cost of a screened, truncated exported model against the cluster size.

Run: ``OMP_NUM_THREADS=1 python benchmarks/export_screening.py [--sizes 100 200]``.
Exports the untrained test PET with ``mtt-mbe export --truncate 3 --cutoff 3``
and times one energy + forces call (metatomic's ase calculator) on random
hydrogen clusters of each size at 0.05 atoms/Å^3 (a sphere, no two atoms
closer than 0.6 Å), after two warm-up calls per size (TorchScript's profiling
runs); prints the median of ``--repeats`` calls, the number of sub-clusters
kept, and the ratio of each time to the first size's. At a fixed order and
cutoff the kept sub-clusters, and the time, grow about linearly with N.
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ase
import numpy as np
import torch
from metatomic_ase import MetatomicCalculator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models import export_tiny_model  # noqa: E402

from metatrain_mbe.compute.screening import body_distances, screened_tuples  # noqa: E402
from metatrain_mbe.interface.cli import main as mtt_mbe  # noqa: E402


def cluster(n_atoms, density=0.05, seed=0):
    """A random hydrogen cluster of ``n_atoms`` in a sphere at ``density`` (atoms/Å^3)."""
    rng = np.random.default_rng(seed)
    radius = (3 * n_atoms / (4 * np.pi * density)) ** (1 / 3)
    positions = []
    while len(positions) < n_atoms:
        trial = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(trial) <= radius and all(
            np.linalg.norm(trial - p) > 0.6 for p in positions
        ):
            positions.append(trial)
    return ase.Atoms(f"H{n_atoms}", positions=positions)


def kept(atoms, order, cutoff):
    """Number of sub-clusters of at most ``order`` atoms the model keeps."""
    n = len(atoms)
    distances = body_distances(torch.tensor(atoms.positions), torch.arange(n), n)
    return sum(len(t) for t in screened_tuples(distances, [float("inf"), cutoff], order))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as directory:
        inner = export_tiny_model("pet", Path(directory))
        model = Path(directory) / "screened.pt"
        options = ["--truncate", str(args.order), "--cutoff", str(args.cutoff)]
        command = ["export", str(inner), "-o", str(model), "-e", f"{directory}/extensions"]
        assert mtt_mbe(command + options) == 0
        calc = MetatomicCalculator(str(model), extensions_directory=f"{directory}/extensions")
        print(f"{'atoms':>6} {'sub-clusters':>13} {'s per call':>11} {'ratio':>6}")
        first = None
        for n_atoms in args.sizes:
            atoms = cluster(n_atoms)
            times = []
            for k in range(args.repeats + 2):
                moved = atoms.copy()
                moved.positions[0, 0] += 1e-4 * k
                moved.calc = calc
                start = time.perf_counter()
                moved.get_potential_energy(), moved.get_forces()
                if k >= 2:
                    times.append(time.perf_counter() - start)
            median = statistics.median(times)
            first = first or median
            count = kept(atoms, args.order, args.cutoff)
            print(f"{n_atoms:>6} {count:>13} {median:>11.3f} {median / first:>6.2f}")


if __name__ == "__main__":
    main()
