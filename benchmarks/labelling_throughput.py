"""Structures per minute of ``label_structures`` (``mtt-mbe label``) with 1 and 2
local workers.

Run: ``python benchmarks/labelling_throughput.py [--count 24]`` on an idle
machine. Labels the same hydrogen sub-clusters (2 to 7 atoms of one 8-atom
cluster, the shipped data's settings: UKS-PBE, cc-pVDZ, 0.025 eV smearing, grid
level 2) into a fresh store with each worker count, and prints the rates and
their ratio (goal: at least 1.8x with 2 workers).
"""

import argparse
import tempfile
import time
from pathlib import Path

from metatrain_mbe.compute.labelling import LabelStore, label_structures
from metatrain_mbe.data import enumerate_subclusters
from metatrain_mbe.data.bulk import hydrogen_bulk
from metatrain_mbe.data.sampling import sample_clusters


def main_benchmark():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=24, help="structures per run")
    args = parser.parse_args()
    (parent,) = sample_clusters([hydrogen_bulk("high", 64, seed=0)], "nearest", 8, 1)
    subs = enumerate_subclusters([parent], [3, 4, 5])[: args.count]
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            store = LabelStore(Path(tmp) / f"s{workers}.db")
            start = time.perf_counter()
            outcome = label_structures(subs, "pyscf", {"grid_level": 2}, store, workers=workers)
            assert not outcome.failed
            rates[workers] = 60 * len(subs) / (time.perf_counter() - start)
    print(
        f"1 worker: {rates[1]:.1f} structures/min; 2 workers: {rates[2]:.1f} "
        f"structures/min; ratio {rates[2] / rates[1]:.2f}x"
    )


if __name__ == "__main__":
    main_benchmark()
