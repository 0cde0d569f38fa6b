"""`mtt-mbe analyze INPUT --model model.pt` end to end, against the naive ase
loop and against the model's own batched forward + backward, in one run.

    python benchmarks/analyze_command.py \\
        --model pet=outputs/pet/model.pt --model soap_bpnn=outputs/soap_bpnn/model.pt \\
        --model mace=outputs/mace/model.pt [--inputs 1 sets 100] [--naive-parents 2] \\
        [--threads 1]

Models: ``mtt-mbe train NAME.yaml -o outputs/NAME/model.pt`` (the speed depends
on the architecture's hyperparameters, not on the epochs: a copy of
options/NAME.yaml with ``num_epochs: 2`` trains one in a few minutes); the
extensions folder is looked for next to the model.

Inputs, from the shipped data as it is when the benchmark runs: ``N`` (a
number), the first N parents of data/hydrogen/parents.xyz.gz; ``sets``,
data/hydrogen/subclusters.xyz.gz: every complete labelled sub-cluster set (the
report then has its reference sections too); ``setsN``: the first N of those
sets (``sets44``: the issue's 44 labelled parents).

Per model and input:

- analyze: wall and CPU seconds of the subprocess ``mtt-mbe analyze INPUT
  --model MODEL -o OUT`` (start-up, reading, evaluation and every report
  file), the best of ``--repeat``;
- naive: a subprocess loading the model in ``metatomic_ase.MetatomicCalculator``
  and evaluating every sub-cluster of the first ``--naive-parents`` parents of
  INPUT one at a time (energy and forces), then Möbius-inverting; its start-up
  plus N times its seconds per parent (the loop is linear in N);
- raw: in this process, the model's forward + backward on the same
  sub-clusters, in the batch layout and size the analysis chose (read from its
  report.json), Systems built beforehand (not timed), after two warm-up calls.

Prints per row the seconds per parent of each and the ratios naive / analyze
(goal >= 20) and analyze / raw (goal <= 1.3), for the whole command and for
each parent beyond the first (the difference of two inputs of parents only,
start-up removed), and the ceiling naive / raw: the ratio a command would reach
if everything but the model's own forward + backward cost nothing. CPU seconds
are printed beside wall seconds: on a shared machine they are the steadier of
the two. ``--threads T`` sets torch's threads of every process (analyze, naive
and raw; default 1, as ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from metatrain_mbe.data import read_structures, write_structures
from metatrain_mbe.data.assembly import parents_to_analyse
from metatrain_mbe.data.io import parent_id

ROOT = Path(__file__).resolve().parents[1]
PARENTS = ROOT / "data" / "hydrogen" / "parents.xyz.gz"
SETS = ROOT / "data" / "hydrogen" / "subclusters.xyz.gz"


def timed_command(command: list[str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, children included) of ``command``,
    and its standard output; stops the benchmark when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, done.stdout


def naive_loop(model: str, structures: str, n_parents: int) -> None:
    """The naive path (run as a subprocess): print the loop's wall and CPU
    seconds per parent as JSON."""
    from metatomic_ase import MetatomicCalculator

    from metatrain_mbe.compute.ase_evaluator import CalculatorEvaluator
    from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan

    warnings.filterwarnings("ignore")
    extensions = Path(model).parent / "extensions"
    calc = MetatomicCalculator(
        model, extensions_directory=str(extensions) if extensions.is_dir() else None
    )
    parents = parents_to_analyse(read_structures(structures), None)[:n_parents]
    wall, cpu = time.perf_counter(), time.process_time()
    for k, parent in enumerate(parents):
        plan = SubsetPlan(len(parent))
        ((energies, gradients),) = CalculatorEvaluator(calc).evaluate([parent], [plan])
        BodyOrderTerms.from_energies(k, plan, energies, gradients)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"wall": wall / len(parents), "cpu": cpu / len(parents)}))


def raw_forward_backward(
    model: str, structures: str, layout: str, batch_size: int
) -> tuple[float, float]:
    """Wall and CPU seconds per parent of the model's forward + backward alone
    on every sub-cluster of the parents of ``structures``."""
    from metatrain_mbe.compute.evaluator import ModelEvaluator
    from metatrain_mbe.expansion import SubsetPlan

    evaluator = ModelEvaluator(model, batch_size=batch_size, strategy=layout)
    parents = parents_to_analyse(read_structures(structures), None)
    plans = [SubsetPlan(len(p)) for p in parents]
    jobs = [evaluator._job(p, q) for p, q in zip(parents, plans)]
    chunks = evaluator._chunks(plans)
    outputs = evaluator._outputs["atom" if layout == "fragments" else "system"]
    wall = cpu = 0.0
    for k, chunk in enumerate(chunks[:1] * 2 + chunks):  # two warm-up calls first
        systems, leaves, _ = evaluator._batch(jobs, chunk, layout)
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.jit.optimized_execution(evaluator.optimize_graph):
            energy = evaluator.model(systems, outputs, check_consistency=False)["energy"]
        torch.autograd.grad(energy.block().values.sum(), [leaf for leaf, _ in leaves])
        if k >= 2:
            wall += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
    return wall / len(parents), cpu / len(parents)


def write_input(name: str, folder: Path) -> tuple[Path, int]:
    """The input file of ``name`` and its number of parents."""

    if name.startswith("sets"):
        frames = read_structures(SETS)
        if name == "sets":
            return SETS, len(parents_to_analyse(frames, None))
        ids = sorted({parent_id(a) for a in frames if "mbe_parent" in a.info})
        n_sets = int(name.removeprefix("sets"))
        keep = set(ids[:n_sets]) | {-1}  # -1: the isolated atoms, which have no mbe_parent
        path = folder / f"{name}.xyz"
        write_structures(path, [a for a in frames if a.info.get("mbe_parent", -1) in keep])
        return path, min(n_sets, len(ids))
    path = folder / f"parents_{name}.xyz"
    write_structures(path, read_structures(PARENTS)[: int(name)])
    return path, int(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--inputs", nargs="+", default=["1", "sets", "100"])
    parser.add_argument("--naive-parents", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--naive", nargs=3, help=argparse.SUPPRESS)  # the naive subprocess
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the subprocesses' torch threads
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    if args.naive:
        naive_loop(args.naive[0], args.naive[1], int(args.naive[2]))
        return
    if not args.model:
        parser.error("give at least one --model NAME=PATH")
    mtt_mbe = shutil.which("mtt-mbe", path=str(Path(sys.executable).parent))
    if mtt_mbe is None:
        sys.exit("mtt-mbe is not installed next to this Python")
    print(
        f"{'model':10s} {'input':>10s} | s/parent wall (cpu): {'analyze':>13s} "
        f"{'naive':>13s} {'raw':>14s} | naive/analyze  analyze/raw  ceiling naive/raw "
        f"| layout, batch ({args.threads} thread(s))"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = {name: write_input(name, folder) for name in args.inputs}
        for spec in args.model:
            name, _, model = spec.partition("=")
            per_parent: dict[int, tuple[float, float]] = {}  # parents only: N -> wall, cpu
            for label, (structures, n_parents) in inputs.items():
                out = folder / f"{name}_{label}"
                command = [mtt_mbe, "analyze", str(structures), "--model", model, "-o", str(out)]
                runs = []
                for _ in range(args.repeat):
                    shutil.rmtree(out, ignore_errors=True)
                    runs.append(timed_command(command)[:2])
                wall, cpu = min(runs)
                info = json.loads((out / "report.json").read_text())["model_info"]
                k = min(args.naive_parents, n_parents)
                naive_wall, naive_cpu, stdout = timed_command(
                    [sys.executable, __file__, "--naive", model, str(structures), str(k)]
                )
                loop = json.loads(stdout.strip().splitlines()[-1])
                naive_wall = naive_wall - k * loop["wall"] + n_parents * loop["wall"]
                naive_cpu = naive_cpu - k * loop["cpu"] + n_parents * loop["cpu"]
                raw, raw_cpu = raw_forward_backward(
                    model, str(structures), info["strategy"], info["batch_size"]
                )
                if label != "sets":
                    per_parent[n_parents] = (wall, cpu)
                print(
                    f"{name:10s} {label:>10s} | {'':20s} {wall / n_parents:6.2f} "
                    f"({cpu / n_parents:5.2f}) {naive_wall / n_parents:6.2f} "
                    f"({naive_cpu / n_parents:5.2f}) {raw:6.3f} ({raw_cpu:5.3f}) | "
                    f"{naive_wall / wall:5.1f} ({naive_cpu / cpu:5.1f})  "
                    f"{wall / n_parents / raw:5.1f} ({cpu / n_parents / raw_cpu:5.1f}) "
                    f"{naive_wall / n_parents / raw:5.1f} "
                    f"({naive_cpu / n_parents / raw_cpu:5.1f}) | "
                    f"{info['strategy']}, {info['batch_size']}",
                    flush=True,
                )
                if len(per_parent) == 2:
                    (n1, (w1, c1)), (n2, (w2, c2)) = sorted(per_parent.items())
                    marginal_wall, marginal_cpu = (w2 - w1) / (n2 - n1), (c2 - c1) / (n2 - n1)
                    print(
                        f"{name:10s} {'marginal':>10s} | {'':20s} {marginal_wall:6.3f} "
                        f"({marginal_cpu:5.3f}) {loop['wall']:6.2f} ({loop['cpu']:5.2f}) "
                        f"{raw:6.3f} ({raw_cpu:5.3f}) | {loop['wall'] / marginal_wall:5.1f} "
                        f"({loop['cpu'] / marginal_cpu:5.1f})  {marginal_wall / raw:5.2f} "
                        f"({marginal_cpu / raw_cpu:5.2f}) | per parent beyond the first",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
