"""`mtt-mbe analyze CLUSTER.xyz --model MODEL.pt --max-order K --cutoff R` on
large screened clusters, against the naive ase loop, in one run.

    OMP_NUM_THREADS=1 python benchmarks/analyze_large.py [--family hydrogen water] \\
        [--model MODEL.pt] [--sizes 50 100 200 400] [--naive-cap 60] [--case-cap 180] \\
        [--profile] [--json results.json]

Clusters (one parent each, written to a temporary folder):

- ``hydrogen``: N = 50, 100, 200, 400 hydrogen atoms at 0.05 atoms/Å^3, no two
  closer than 0.7 Å (``sparse_cluster`` of tests/interface/test_cli_screening.py),
  orders K = 2, 3, 4, ``--cutoff 3``; bodies are atoms. Model: ``--model``
  (its ``extensions/`` folder is looked for next to it), else an untrained
  float64 PET for H with the test sizes of tests/models.py (cutoff 5.5 Å,
  d_pet 16, two GNN layers).
- ``water``: N = 50 .. 400 rigid ``ase.build.molecule("H2O")`` copies, randomly
  oriented, their O atoms on a jittered cubic grid at 0.033 molecules/Å^3 (liquid
  density; O atoms at least 2.5 Å apart, atoms of different molecules at least
  1.2 Å apart), the N sites closest to the centre; bodies are molecules
  (``mbe_fragment``), orders K = 2, 3, ``--cutoff 3.5`` (molecule distance:
  closest atoms). Model: the same untrained PET for H and O (speed only: its
  energies mean nothing).

Per case:

- analyze: wall and CPU seconds (user + system) and peak resident memory of the
  subprocess ``mtt-mbe analyze CLUSTER.xyz --model MODEL --max-order K --cutoff R
  -o OUT``, start-up, reading, evaluation and every report file included (the
  child's own rusage, from ``os.wait4``); the kept sub-clusters are read from
  its report.json (``family``); ``--case-cap`` seconds at most, larger sizes of
  an order are dropped after one that ran past it;
- naive: a subprocess that loads the model in ``metatomic_ase.MetatomicCalculator``,
  builds the same family (``parent_plan(atoms, K, cutoffs=Cutoffs.parse(R))``),
  evaluates every kept sub-cluster (``plan.atoms_in(k)``) one at a time, energy
  and forces, then Möbius-inverts them; its whole wall time, start-up included.
  A case whose naive run would take over ``--naive-cap`` seconds (predicted
  from the previous size: its start-up plus its seconds per sub-cluster), or
  whose loop runs past them (stopped there), is skipped, and so are the larger
  ones of its order. The naive m-body energies per body are checked against
  the command's report.json (column ``max |dE/body|``, eV).

Printed per case: bodies, order, kept sub-clusters, analyze wall (CPU) seconds,
sub-clusters per second (wall), peak memory (MB), naive wall (CPU) seconds, the
ratio naive / analyze, and per order the doubling ratio t(2N) / t(N) of the
command (wall, then CPU), whole and less the fixed cost (goal: <= 2.5 at fixed
order and cutoff). The fixed cost is the same command on a 2-body cluster
(2 hydrogen atoms 1 Å apart, or 2 water molecules), the best of two runs;
every other case runs once. ``--orders`` keeps some of each family's orders.
``--profile`` reruns the largest case of each family under cProfile and prints
its 25 most expensive functions (cumulative).
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ase
import ase.io
import numpy as np
import torch
from ase.build import molecule

FAMILIES = {
    # name: (orders, cutoff in Å, atomic types of the default model)
    "hydrogen": ((2, 3, 4), 3.0, (1,)),
    "water": ((2, 3), 3.5, (1, 8)),
}
H_DENSITY = 0.05  # atoms per Å^3
WATER_DENSITY = 0.033  # molecules per Å^3


# --- clusters -----------------------------------------------------------------


def sparse_cluster(n_atoms: int, density: float = H_DENSITY, seed: int = 0) -> ase.Atoms:
    """Hydrogen atoms at ``density`` per Å^3, no two closer than 0.7 Å (as in
    tests/interface/test_cli_screening.py)."""
    rng = np.random.default_rng(seed)
    side = (n_atoms / density) ** (1 / 3)
    positions: list[np.ndarray] = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0.0, side, size=3)
        if all(np.linalg.norm(trial - p) > 0.7 for p in positions):
            positions.append(trial)
    return ase.Atoms("H" * n_atoms, positions=positions)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3 x 3 rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def water_cluster(n_molecules: int, density: float = WATER_DENSITY, seed: int = 0) -> ase.Atoms:
    """``n_molecules`` rigid waters, randomly oriented, O atoms on the sites of
    a cubic grid at ``density`` closest to its centre, each jittered; O atoms
    at least 2.5 Å apart, atoms of different molecules at least 1.2 Å apart.
    ``mbe_fragment`` numbers the molecules."""
    rng = np.random.default_rng(seed)
    spacing = density ** (-1 / 3)
    side = int(np.ceil(n_molecules ** (1 / 3))) + 2
    grid = np.array(np.meshgrid(*[np.arange(side)] * 3, indexing="ij")).reshape(3, -1).T
    grid = grid * spacing
    centre = grid.mean(axis=0)
    sites = grid[np.argsort(np.linalg.norm(grid - centre, axis=1), kind="stable")[:n_molecules]]
    template = molecule("H2O")
    local = template.positions - template.positions[0]  # O first
    positions: list[np.ndarray] = []
    oxygens: list[np.ndarray] = []
    for site in sites:
        while True:
            oxygen = site + rng.uniform(-0.35, 0.35, size=3)
            atoms = oxygen + local @ random_rotation(rng).T
            if oxygens:
                near = np.linalg.norm(np.array(oxygens) - oxygen, axis=1) < 6.0
                if np.linalg.norm(np.array(oxygens)[near] - oxygen, axis=1).min(initial=9) < 2.5:
                    continue
                others = np.concatenate(positions)
                gaps = np.linalg.norm(others[:, None] - atoms[None], axis=-1)
                if gaps.min() < 1.2:
                    continue
            break
        positions.append(atoms)
        oxygens.append(oxygen)
    cluster = ase.Atoms(template.get_chemical_symbols() * n_molecules, np.concatenate(positions))
    cluster.arrays["mbe_fragment"] = np.repeat(np.arange(n_molecules), len(template))
    return cluster


def cluster_of(family: str, n_bodies: int) -> ase.Atoms:
    if family == "hydrogen":
        if n_bodies == 2:
            return ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.0]])
        return sparse_cluster(n_bodies)
    return water_cluster(n_bodies)


# --- the tiny untrained model (as tests/models.py builds it) -------------------


def export_tiny_pet(directory: Path, atomic_types: tuple[int, ...]) -> Path:
    """An untrained float64 metatrain PET for ``atomic_types`` with the test
    sizes of tests/models.py, exported as ``directory/pet.pt``."""
    from metatrain.utils.architectures import get_default_hypers, import_architecture
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    hypers = get_default_hypers("pet")["model"]
    hypers.update(
        cutoff=5.5,
        d_pet=16,
        d_head=16,
        d_node=16,
        d_feedforward=16,
        num_heads=2,
        num_attention_layers=1,
        num_gnn_layers=2,
    )
    target = get_energy_target_info(
        "energy",
        OmegaConf.create(
            {
                "quantity": "energy",
                "unit": "eV",
                "type": "scalar",
                "per_atom": False,
                "num_subtargets": 1,
                "description": "",
            }
        ),
        add_position_gradients=True,
    )
    info = DatasetInfo(
        length_unit="angstrom", atomic_types=list(atomic_types), targets={"energy": target}
    )
    model = import_architecture("pet").__model__(hypers, info).to(torch.float64)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pet.pt"
    model.eval().export().save(str(path), collect_extensions=str(directory / "extensions"))
    return path


# --- timing -------------------------------------------------------------------


class _Popen(subprocess.Popen):
    """``Popen`` that keeps the child's own rusage (``os.wait4``)."""

    rusage: resource.struct_rusage | None = None

    def _try_wait(self, wait_flags):
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid == self.pid:
            self.rusage = usage
        return pid, status


def timed_child(command: list[str], timeout: float) -> dict:
    """Run ``command``: its wall and CPU seconds, peak memory (MB, the child's
    own maximum resident set), standard output, and whether it ran past
    ``timeout`` (then killed)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = _Popen(command, stdout=out, stderr=err, text=True)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            return {"timed_out": True, "wall": time.perf_counter() - start}
        wall = time.perf_counter() - start
        usage = child.rusage
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"{' '.join(command)} failed:\n{err.read()[-3000:]}")
        return {
            "timed_out": False,
            "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime,
            "peak_mb": usage.ru_maxrss / 1024,
            "stdout": out.read(),
        }


# --- the naive loop -----------------------------------------------------------


def naive_loop(model: str, structure: str, max_order: int, cutoff: str, cap: float) -> None:
    """The naive path (run as a subprocess): every kept sub-cluster through
    metatomic's ase calculator, one at a time, then the Möbius inversion;
    prints the kept count, the loop's seconds, whether it finished within
    ``cap`` seconds, and the m-body energies per body, as JSON."""
    from metatomic_ase import MetatomicCalculator

    from metatrain_mbe.cutoffs import Cutoffs
    from metatrain_mbe.data import parent_plan
    from metatrain_mbe.expansion import BodyOrderTerms

    warnings.filterwarnings("ignore")
    extensions = Path(model).parent / "extensions"
    calc = MetatomicCalculator(
        model, extensions_directory=str(extensions) if extensions.is_dir() else None
    )
    parent = ase.io.read(structure)
    plan = parent_plan(parent, max_order, cutoffs=Cutoffs.parse(cutoff))
    start = time.perf_counter()
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    rows = plan.atom_rows()[2]
    gradients = torch.zeros((int(rows[-1]), 3), dtype=torch.float64)
    for k in range(1, plan.n_subsets):
        atoms = parent[plan.atoms_in(k)]
        atoms.pbc = False
        atoms.calc = calc
        energies[k] = float(atoms.get_potential_energy())
        gradients[rows[k] : rows[k + 1]] = -torch.tensor(atoms.get_forces())
        if time.perf_counter() - start > cap:
            print(
                json.dumps(
                    {
                        "kept": plan.n_subsets - 1,
                        "done": k,
                        "finished": False,
                        "loop": time.perf_counter() - start,
                    }
                )
            )
            return
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    print(
        json.dumps(
            {
                "kept": plan.n_subsets - 1,
                "done": plan.n_subsets - 1,
                "finished": True,
                "loop": time.perf_counter() - start,
                "per_body": terms.per_body().tolist(),
            }
        )
    )


# --- the study ----------------------------------------------------------------


def run_case(
    mtt_mbe: str, model: str, structure: Path, order: int, cutoff: float, out: Path, cap: float
) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        mtt_mbe,
        "analyze",
        str(structure),
        "--model",
        model,
        "--max-order",
        str(order),
        "--cutoff",
        f"{cutoff:g}",
        "-o",
        str(out),
    ]
    result = timed_child(command, cap)
    if result["timed_out"]:
        return result
    family = json.loads((out / "report.json").read_text())["family"]
    result["kept"] = sum(entry["kept"] for entry in family["orders"].values())
    result["per_body"] = [
        family["orders"][str(m)]["energy_per_body"]["mean"] for m in range(1, order + 1)
    ]
    del result["stdout"]
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, None unless both are positive (a cost less the fixed cost can
    come out negative within the noise)."""
    return None if a is None or b is None or a <= 0 or b <= 0 else a / b


def fmt(x: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}s}" if x is None else f"{x:{width}.{digits}f}"


def study(
    family: str, model: str, label: str, sizes: list[int], folder: Path, mtt_mbe: str, args
) -> list[dict]:
    orders, cutoff, _ = FAMILIES[family]
    rows: list[dict] = []
    paths = {}
    for n in [2, *sizes]:
        paths[n] = folder / f"{family}_{n}.xyz"
        ase.io.write(paths[n], cluster_of(family, n), format="extxyz")
    fixed = min(  # the best of two: the first also warms the file cache
        (
            run_case(mtt_mbe, model, paths[2], 2, cutoff, folder / "out", args.case_cap)
            for _ in range(2)
        ),
        key=lambda r: r["wall"],
    )
    print(
        f"\n{family}, model {label}, --cutoff {cutoff:g}: fixed cost (2 bodies, K = 2) "
        f"{fixed['wall']:.2f} ({fixed['cpu']:.2f}) s, {fixed['peak_mb']:.0f} MB",
        flush=True,
    )
    print(
        f"{'N':>5s} {'K':>2s} {'kept':>8s} | {'analyze s':>15s} {'sub/s':>8s} {'MB':>6s} | "
        f"{'naive s':>15s} {'naive/an':>9s} | {'t(2N)/t(N)':>11s} {'less fixed':>11s}"
        f" | {'max |dE/body|':>13s}",
        flush=True,
    )
    rows.append(
        {
            "family": family,
            "model": label,
            "bodies": 2,
            "order": 2,
            "fixed": True,
            "wall": fixed["wall"],
            "cpu": fixed["cpu"],
            "peak_mb": fixed["peak_mb"],
            "kept": fixed["kept"],
        }
    )
    for order in orders:
        previous: dict | None = None
        naive_rate: float | None = None  # naive seconds per sub-cluster, last size
        naive_start: float | None = None  # naive seconds outside the loop
        dropped = naive_skipped = False
        for n in sizes:
            row: dict = {
                "family": family,
                "model": label,
                "bodies": n,
                "order": order,
                "cutoff": cutoff,
                "fixed": False,
            }
            if dropped:
                row["dropped"] = True
                rows.append(row)
                print(
                    f"{n:5d} {order:2d}  dropped (a smaller size ran past {args.case_cap:g} s)",
                    flush=True,
                )
                continue
            result = run_case(
                mtt_mbe, model, paths[n], order, cutoff, folder / "out", args.case_cap
            )
            if result["timed_out"]:
                dropped = True
                row["dropped"] = True
                rows.append(row)
                print(f"{n:5d} {order:2d}  dropped: ran past {args.case_cap:g} s", flush=True)
                continue
            row.update(
                kept=result["kept"],
                wall=result["wall"],
                cpu=result["cpu"],
                peak_mb=result["peak_mb"],
                rate=result["kept"] / result["wall"],
            )
            # the naive loop, when it fits in --naive-cap
            predicted = None if naive_rate is None else naive_start + naive_rate * result["kept"]
            if not naive_skipped and (predicted is None or predicted <= args.naive_cap):
                naive = timed_child(
                    [
                        sys.executable,
                        __file__,
                        "--naive",
                        model,
                        str(paths[n]),
                        str(order),
                        f"{cutoff:g}",
                        str(args.naive_cap),
                    ],
                    3 * args.naive_cap + 60,
                )
                loop = (
                    None
                    if naive["timed_out"]
                    else json.loads(naive["stdout"].strip().splitlines()[-1])
                )
                if loop is not None and loop["finished"]:
                    if loop["kept"] != result["kept"]:
                        sys.exit(f"naive family {loop['kept']} != command {result['kept']}")
                    row.update(
                        naive_wall=naive["wall"],
                        naive_cpu=naive["cpu"],
                        naive_peak_mb=naive["peak_mb"],
                    )
                    row["agreement"] = max(
                        abs(a - b) for a, b in zip(loop["per_body"], result["per_body"])
                    )
                    naive_rate = loop["loop"] / loop["kept"]
                    naive_start = naive["wall"] - loop["loop"]
                else:
                    naive_skipped = True
            else:
                naive_skipped = True
            if naive_skipped:
                row["naive_skipped"] = f"> {args.naive_cap:g} s" + (
                    "" if predicted is None else f" (predicted {predicted:.0f} s)"
                )
            if previous is not None and previous["bodies"] * 2 == n:
                row["doubling_wall"] = row["wall"] / previous["wall"]
                row["doubling_cpu"] = row["cpu"] / previous["cpu"]
                row["doubling_wall_marginal"] = ratio(
                    row["wall"] - fixed["wall"], previous["wall"] - fixed["wall"]
                )
                row["doubling_cpu_marginal"] = ratio(
                    row["cpu"] - fixed["cpu"], previous["cpu"] - fixed["cpu"]
                )
            previous = row
            rows.append(row)
            naive_text = (
                f"{row['naive_wall']:7.2f} ({row['naive_cpu']:6.2f})"
                if "naive_wall" in row
                else f"{'skipped':>15s}"
            )
            doubling = (
                f"{row['doubling_wall']:4.2f} ({row['doubling_cpu']:4.2f}) "
                f"{fmt(row['doubling_wall_marginal'], 4, 2)} "
                f"({fmt(row['doubling_cpu_marginal'], 4, 2)})"
                if "doubling_wall" in row
                else f"{'':>23s}"
            )
            agreement = f"{row['agreement']:13.1e}" if "agreement" in row else f"{'-':>13s}"
            print(
                f"{n:5d} {order:2d} {row['kept']:8d} | {row['wall']:7.2f} ({row['cpu']:6.2f}) "
                f"{row['rate']:8.0f} {row['peak_mb']:6.0f} | {naive_text} "
                f"{fmt(ratio(row.get('naive_wall'), row['wall']), 9, 1)} | {doubling} | "
                f"{agreement}",
                flush=True,
            )
    skipped = [f"N = {r['bodies']}, K = {r['order']}" for r in rows if r.get("naive_skipped")]
    if skipped:
        print(f"naive loop skipped (over {args.naive_cap:g} s): {'; '.join(skipped)}")
    if args.profile:
        largest = [r for r in rows if not r["fixed"] and "wall" in r]
        if largest:
            case = max(largest, key=lambda r: r["wall"])
            profile = folder / f"{family}.prof"
            out = folder / "out"
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(profile),
                    mtt_mbe,
                    "analyze",
                    str(paths[case["bodies"]]),
                    "--model",
                    model,
                    "--max-order",
                    str(case["order"]),
                    "--cutoff",
                    f"{cutoff:g}",
                    "-o",
                    str(out),
                ],
                check=True,
                capture_output=True,
            )
            print(
                f"\ncProfile of N = {case['bodies']}, K = {case['order']} "
                f"(25 most expensive, cumulative):"
            )
            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(25)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--family", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument(
        "--model",
        help="exported model for the hydrogen clusters (default: an untrained tiny PET for H)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    parser.add_argument("--orders", type=int, nargs="+", help="subset of each family's orders")
    parser.add_argument(
        "--naive-cap", type=float, default=60.0, help="seconds of the naive loop per case at most"
    )
    parser.add_argument(
        "--case-cap",
        type=float,
        default=180.0,
        help="seconds of one command at most; larger sizes are dropped",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the largest case")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    parser.add_argument("--naive", nargs=5, help=argparse.SUPPRESS)  # the naive subprocess
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    warnings.filterwarnings("ignore")
    if args.naive:
        model, structure, order, cutoff, cap = args.naive
        naive_loop(model, structure, int(order), cutoff, float(cap))
        return
    if args.orders:
        for name, (orders, cutoff, types) in FAMILIES.items():
            FAMILIES[name] = (tuple(k for k in orders if k in args.orders), cutoff, types)
    mtt_mbe = shutil.which("mtt-mbe", path=str(Path(sys.executable).parent))
    if mtt_mbe is None:
        sys.exit("mtt-mbe is not installed next to this Python")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for family in args.family:
            if family == "hydrogen" and args.model:
                model, label = str(Path(args.model).resolve()), args.model
            else:
                types = FAMILIES[family][2]
                model = str(export_tiny_pet(folder / f"pet_{family}", types))
                label = f"tiny PET for {'+'.join(ase.Atoms(numbers=types).get_chemical_symbols())}"
                label += " (untrained: speed only)"
            rows += study(family, model, label, args.sizes, folder, mtt_mbe, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
