"""Model MBE of 8-atom parents: batched evaluator against the naive loop
through metatomic's ase calculator, and against the model's raw batched
forward + backward on the same sub-clusters.

    OMP_NUM_THREADS=1 python benchmarks/model_mbe.py [--parents 4] [--atoms 8]

Builds tiny untrained float64 SOAP-BPNN, PET and MACE models (tests/models.py).
Prints, per model: milliseconds per parent of each path (the best of 3 repeats for
the batched and raw paths, after a first run that includes the layout probe) and
the two ratios. ``benchmarks/analyze_command.py`` times the user's command end to
end on trained models.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import hydrogen_cluster  # noqa: E402
from tests.models import ARCHITECTURES, export_tiny_model  # noqa: E402

from metatrain_mbe.compute.ase_evaluator import CalculatorEvaluator  # noqa: E402
from metatrain_mbe.compute.evaluator import BATCH_LAYOUTS, ModelEvaluator  # noqa: E402
from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan  # noqa: E402


def raw_forward_backward(evaluator: ModelEvaluator, parent, plan, strategy: str) -> float:
    """Seconds of the model call and backward pass alone, on every sub-cluster
    of ``parent`` in one call, prebuilt in the layout ``strategy`` (construction
    not timed)."""
    job = evaluator._job(parent, plan)
    systems, leaves, _ = evaluator._batch([job], [(0, torch.arange(1, plan.n_subsets))], strategy)
    outputs = evaluator._outputs["atom" if strategy == "fragments" else "system"]
    start = time.perf_counter()
    with torch.jit.optimized_execution(evaluator.optimize_graph):
        energy = evaluator.model(systems, outputs, check_consistency=False)["energy"]
    torch.autograd.grad(energy.block().values.sum(), [leaf for leaf, _ in leaves])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=4)
    parser.add_argument("--atoms", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from metatomic_ase import MetatomicCalculator

    parents = [hydrogen_cluster(args.atoms, seed=s) for s in range(args.parents)]
    plans = [SubsetPlan(args.atoms) for _ in parents]
    with tempfile.TemporaryDirectory() as tmp:
        for name in ARCHITECTURES:
            path = export_tiny_model(name, Path(tmp))
            extensions = str(Path(tmp) / "extensions")
            calc = MetatomicCalculator(str(path), extensions_directory=extensions)
            naive = CalculatorEvaluator(calc)
            naive.evaluate(parents[:1], plans[:1])  # warm-up
            start = time.perf_counter()
            reference = naive.evaluate(parents[:1], plans[:1])
            t_naive = time.perf_counter() - start

            evaluator = ModelEvaluator(path, strategy="auto")
            start = time.perf_counter()
            evaluator.evaluate(parents, plans)  # the probe's calls, warm-up included
            t_first = (time.perf_counter() - start) / len(parents)
            t_batched = math.inf  # best of 3, like the raw timing below
            for _ in range(3):
                start = time.perf_counter()
                results = evaluator.evaluate(parents, plans)
                for plan, (e, g) in zip(plans, results):
                    BodyOrderTerms.from_energies(0, plan, e, g)
                t_batched = min(t_batched, (time.perf_counter() - start) / len(parents))
            error = float((results[0][0] - reference[0][0]).abs().max())

            raw = {}
            for strategy in BATCH_LAYOUTS:
                for _ in range(3):  # warm-up
                    raw_forward_backward(evaluator, parents[0], plans[0], strategy)
                raw[strategy] = min(
                    raw_forward_backward(evaluator, p, q, strategy) for p, q in zip(parents, plans)
                )
            t_raw = min(raw.values())
            probe = {s: f"{t * 1e6:.0f}" for s, t in evaluator.timings.items()}
            print(
                f"{name:18s} naive {t_naive * 1e3:7.0f} ms  batched {t_batched * 1e3:6.0f} ms "
                f"(first run {t_first * 1e3:.0f} ms) [{evaluator.strategy}, "
                f"{evaluator.batch_size}; probe µs/atom {probe}]  raw {t_raw * 1e3:6.0f} ms "
                f"(list of Systems {raw['systems'] * 1e3:.0f} ms)  "
                f"speed-up {t_naive / t_batched:5.1f}x  overhead {t_batched / t_raw:4.2f}x  "
                f"max |dE| {error:.1e} eV"
            )


if __name__ == "__main__":
    main()
