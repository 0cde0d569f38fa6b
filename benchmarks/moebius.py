"""Speed of the Möbius transform against the naive recursion of paper Eq. 2.

Run: ``OMP_NUM_THREADS=1 python benchmarks/moebius.py [--sizes 12 16 20]``.
Prints, per cluster size N, the seconds for V(S) of all 2^N sub-clusters with the
fast subset transform (energies, float64), with the passes over the family that
truncated and screened plans use (on the same complete plan), the passes on a
plan truncated at k = 4, and the naive O(3^N) recursion where it finishes
within ``--naive-limit`` seconds.
"""

import argparse
import time

import torch

from metatrain_mbe.expansion import SubsetPlan, moebius_transform


def naive_recursion(energy: list[float], n: int, deadline: float) -> list[float] | None:
    """V(S) = E(S) - sum of V(T) over proper subsets T (Eq. 2), mask by mask."""
    v = [0.0] * (1 << n)
    for mask in sorted(range(1, 1 << n), key=lambda m: bin(m).count("1")):
        total, sub = 0.0, (mask - 1) & mask
        while sub:
            total += v[sub]
            sub = (sub - 1) & mask
        v[mask] = energy[mask] - total
        if time.perf_counter() > deadline:
            return None
    return v


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16, 20])
    parser.add_argument("--naive-limit", type=float, default=120.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'N':>3} {'subsets':>9} {'moebius s':>10} {'passes s':>9} {'plan s':>8} {'k=4 s':>8} "
        f"{'naive s':>10} {'ratio':>8}"
    )
    for n in args.sizes:
        start = time.perf_counter()
        plan = SubsetPlan(n, max_atoms=n)
        plan_time = time.perf_counter() - start
        by_mask = torch.randn(1 << n, dtype=torch.float64)  # E(S) indexed by bitmask
        by_mask[0] = 0.0
        energy = by_mask[plan.masks()]  # in plan order
        fast = best_of(lambda: moebius_transform(energy, plan))
        plan.passes()
        passes = best_of(lambda: moebius_transform(energy, plan, fast=False))
        truncated_plan = SubsetPlan(n, max_order=4)
        truncated_energy = by_mask[truncated_plan.masks()]
        truncated_plan.passes()
        truncated = best_of(lambda: moebius_transform(truncated_energy, truncated_plan))
        start = time.perf_counter()
        naive = naive_recursion(by_mask.tolist(), n, start + args.naive_limit)
        naive_time = time.perf_counter() - start
        if naive is None:
            naive_text, ratio = f">{args.naive_limit:.0f}", "-"
        else:
            result = moebius_transform(energy, plan)
            expected = torch.tensor(naive, dtype=torch.float64)[plan.masks()]
            assert torch.allclose(result, expected, atol=1e-8)
            naive_text, ratio = f"{naive_time:.3f}", f"{naive_time / fast:.0f}x"
        print(
            f"{n:>3} {1 << n:>9} {fast:>10.4f} {passes:>9.4f} {plan_time:>8.3f} {truncated:>8.4f} "
            f"{naive_text:>10} {ratio:>8}"
        )


if __name__ == "__main__":
    main()
