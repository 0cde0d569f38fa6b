"""Molecules as bodies: the MBE of a water decamer, batched against the naive loop.

Run: ``OMP_NUM_THREADS=1 python benchmarks/fragment_decomposition.py [--model PATH]``.
On an (H2O)_10 cluster (10 molecules, 1023 unions of whole molecules), all in
the same process and minutes, it times:

- (a) the model exported with ``--bodies molecules``: ``mbe::energy_by_order``
  through metatomic's ase calculator, every union of molecules in one call of
  the inner model; (a') the same export with ``--truncate 10`` (E_10 = E),
  energy and forces, the autograd running back through all 1023 unions;
  both again exported with ``--subcluster-batch-size 64`` (calls of 64 unions);
- (b) the Python batched evaluator,
  ``ModelEvaluator(model).evaluate([parent], [SubsetPlan.of_fragments(ids)])``:
  E(S) and dE(S)/dr of every union;
- (c) the naive loop: every union as its own ``ase.Atoms`` through metatomic's
  ase calculator, energy and forces, one at a time.

Ratios are naive / batched, wall and CPU (user + system) seconds. The results
are checked against each other: the per-order sums of (a), of (b) and of (c)
(Möbius inversion of the 1023 energies) agree.

The model: ``--model`` (an exported model for H and O), else an untrained
float64 metatrain PET for H and O with the test sizes of ``tests/models.py``
(cutoff 5.5 Å, d_pet 16, two GNN layers).
"""

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ase
import numpy as np
import torch
from ase.build import molecule
from metatomic.torch import ModelOutput
from metatomic_ase import MetatomicCalculator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models import export_tiny_model  # noqa: E402

from metatrain_mbe.compute.export import export_mbe_model  # noqa: E402
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER  # noqa: E402
from metatrain_mbe.data.fragments import assign_fragments  # noqa: E402

BY_ORDER = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}


def water_decamer(seed: int = 0) -> ase.Atoms:
    """10 randomly oriented waters, O atoms on a 2 x 2 x 3 grid (2.9 Å apart)
    less two corners, no two atoms of different molecules closer than 1.6 Å."""
    rng = np.random.default_rng(seed)
    sites = [np.array([i, j, k]) * 2.9 for i in range(2) for j in range(2) for k in range(3)][:10]
    cluster = ase.Atoms()
    for site in sites:
        while True:
            water = molecule("H2O")
            water.rotate(rng.normal(size=3), rng.normal(size=3), center=water.positions[0])
            water.translate(site + 0.2 * rng.normal(size=3) - water.positions[0])
            if len(cluster) == 0:
                break
            gaps = np.linalg.norm(cluster.positions[:, None] - water.positions[None], axis=-1)
            if gaps.min() > 1.6:
                break
        cluster += water
    return cluster


def timed(function, repeats: int):
    """Result of the last call, and wall and CPU seconds per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        result = function()
    return (
        result,
        (time.perf_counter() - wall) / repeats,
        (time.process_time() - cpu) / repeats,
    )


def order_sums(energies: np.ndarray, n_bodies: int) -> np.ndarray:
    """Σ_{|S|=m} V(S), m = 1..n, from E(S) indexed by bitmask (E(∅) = 0)."""
    terms = np.array(energies, dtype=float)
    for bit in range(n_bodies):  # the Möbius transform, one body at a time
        with_bit = (np.arange(len(terms)) >> bit) & 1 == 1
        terms[with_bit] -= terms[np.flatnonzero(with_bit) ^ (1 << bit)]
    sizes = np.array([bin(mask).count("1") for mask in range(len(terms))])
    return np.array([terms[sizes == m].sum() for m in range(1, n_bodies + 1)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported model for H and O (default: untrained PET)")
    parser.add_argument("--extensions", help="its extensions directory")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of (a) and (b)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")

    from metatrain_mbe.compute.evaluator import ModelEvaluator
    from metatrain_mbe.expansion import SubsetPlan

    if not hasattr(SubsetPlan, "of_fragments"):
        sys.exit("(b) needs SubsetPlan.of_fragments, which this version of the package lacks")

    parent = water_decamer()
    ids = assign_fragments(parent)
    n = int(ids.max()) + 1
    assert n == 10, ids
    print(f"(H2O)_10: {len(parent)} atoms, {n} molecules, {2**n - 1} unions of molecules")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model:
            inner_path = Path(args.model)
            extensions = args.extensions or str(inner_path.parent / "extensions")
        else:
            inner_path = export_tiny_model("pet", tmp, atomic_types=(1, 8))
            extensions = str(tmp / "extensions")
        collected = str(tmp / "extensions")
        rows = []
        for batch_size in (0, 64):
            calculators = []
            for truncate in (0, n):
                path = tmp / f"mbe-{truncate}-{batch_size}.pt"
                export_mbe_model(
                    inner_path,
                    path,
                    extensions=extensions,
                    bodies="molecules",
                    truncate=truncate,
                    batch_size=batch_size,
                )
                calculators.append(MetatomicCalculator(str(path), extensions_directory=collected))
            mbe, e10 = calculators
            calls = "one call" if batch_size == 0 else f"--subcluster-batch-size {batch_size}"

            # (a) energy_by_order; (a') E_10 with forces
            def by_order(mbe=mbe):
                block = mbe.run_model(parent, BY_ORDER)[ENERGY_BY_ORDER].block()
                return block.values[0].detach().numpy()

            by_order()  # first calls: TorchScript profiling runs
            sums_a, wall, cpu = timed(by_order, args.repeats)
            rows.append((f"(a)  export, by order, {calls}", wall, cpu, sums_a))

            def truncated(e10=e10):
                atoms = parent.copy()
                e10.reset()  # else the calculator returns its stored results
                atoms.calc = e10
                return atoms.get_potential_energy(), atoms.get_forces()

            truncated()
            (energy_e10, _), wall, cpu = timed(truncated, args.repeats)
            rows.append((f"(a') export, E_10 + forces, {calls}", wall, cpu, energy_e10))
        inner = MetatomicCalculator(str(inner_path), extensions_directory=extensions)

        # (b) the Python batched evaluator
        evaluator = ModelEvaluator(inner_path, extensions)
        plan = SubsetPlan.of_fragments(ids)
        evaluator.evaluate([parent], [plan])  # first call: the layout probe
        ((energies_b, _),), wall, cpu = timed(
            lambda: evaluator.evaluate([parent], [plan]), args.repeats
        )
        by_mask = torch.zeros(2**n, dtype=torch.float64)
        by_mask[plan.masks()] = energies_b
        sums_b = order_sums(by_mask.numpy(), n)
        rows.append(("(b)  Python evaluator, E(S), dE(S)/dr", wall, cpu, sums_b))

        # (c) the naive loop: each union alone, energy and forces
        unions = [
            parent[np.isin(ids, [k for k in range(n) if mask >> k & 1])] for mask in range(1, 2**n)
        ]

        def naive():
            energies = [0.0]
            for atoms in unions:
                atoms.calc = inner
                energies.append(atoms.get_potential_energy())
                atoms.get_forces()
                atoms.calc = None
            return np.array(energies)

        naive_energies, wall_c, cpu_c = timed(naive, 1)
        sums_c = order_sums(naive_energies, n)
        rows.append(("(c)  naive loop, 1023 calls", wall_c, cpu_c, sums_c))

    scale = max(1.0, np.abs(sums_c).max())
    for label, _, _, result in rows:  # per-order sums, or E_10 = E
        expected = sums_c if np.ndim(result) else sums_c.sum()
        assert np.abs(result - expected).max() < 1e-8 * scale, (label, result, expected)
    print("per-order sums (eV):", " ".join(f"{x:.5f}" for x in sums_c))
    print("(a), (a'), (b) and (c) agree to 1e-8 eV")
    print(f"{'':>44} {'wall s':>8} {'CPU s':>8} {'c/x wall':>9} {'c/x CPU':>8}")
    for label, wall, cpu, _ in rows:
        print(f"{label:>44} {wall:>8.3f} {cpu:>8.3f} {wall_c / wall:>9.1f} {cpu_c / cpu:>8.1f}")


if __name__ == "__main__":
    main()
