"""Cost of the exported MBE wrapper against the inner model.

Run: ``OMP_NUM_THREADS=1 python benchmarks/export_overhead.py [--device cuda]``.
For untrained SOAP-BPNN, PET and MACE models (the small test sizes), on a
random 8-atom hydrogen cluster, it times with metatomic's ase calculator:

- one MD step (energy + forces, what an engine asks for) of the plain model
  and of the wrapped model, interleaved in rounds in the same process; the
  ratio is the median over rounds of wrapped / plain (goal: at most 1.03);
- ``mbe::energy_by_order`` of the wrapped model (all 255 sub-clusters in one
  call of the inner model) per 8-mer;
- the naive way: the 255 sub-clusters one by one through the inner model.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from metatomic.torch import ModelOutput
from metatomic_ase import MetatomicCalculator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import hydrogen_cluster  # noqa: E402
from tests.models import ARCHITECTURES, export_tiny_model  # noqa: E402

from metatrain_mbe.compute.export import export_mbe_model  # noqa: E402
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER  # noqa: E402


def per_step(plain, wrapped, repeats, rounds):
    """Median over ``rounds`` of the time per call of ``plain`` and ``wrapped``
    (interleaved, each first in every other round, so both see the same machine
    load) and of their ratio."""
    plain_times, wrapped_times = [], []
    for k in range(rounds):
        if k % 2:
            wrapped_times.append(timed(wrapped, repeats))
            plain_times.append(timed(plain, repeats))
        else:
            plain_times.append(timed(plain, repeats))
            wrapped_times.append(timed(wrapped, repeats))
    ratios = [w / p for p, w in zip(plain_times, wrapped_times, strict=True)]
    return (
        statistics.median(plain_times),
        statistics.median(wrapped_times),
        statistics.median(ratios),
    )


def timed(function, repeats):
    function()  # warm-up (TorchScript profiling runs)
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def energy_and_forces(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    return lambda: (atoms.get_potential_energy(), atoms.get_forces(), atoms.calc.reset())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20, help="calls per timing")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved plain/wrapped rounds")
    parser.add_argument("--architectures", nargs="+", default=ARCHITECTURES)
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = hydrogen_cluster(8, seed=0)
    by_order = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}
    print(
        f"{'model':>18} {'plain step ms':>14} {'wrapped step ms':>16} {'ratio':>7} "
        f"{'MBE ms':>8} {'naive ms':>9} {'speed-up':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.architectures:
            (tmp / name).mkdir()
            inner_path = export_tiny_model(name, tmp / name)
            wrapped_path = tmp / name / "mbe.pt"
            export_mbe_model(inner_path, wrapped_path)
            kwargs = {"extensions_directory": str(tmp / name / "extensions"), "device": args.device}
            inner = MetatomicCalculator(str(inner_path), **kwargs)
            wrapped = MetatomicCalculator(str(wrapped_path), **kwargs)
            t_inner, t_wrapped, ratio = per_step(
                energy_and_forces(atoms, inner),
                energy_and_forces(atoms, wrapped),
                args.repeats,
                args.rounds,
            )
            t_mbe = timed(lambda: wrapped.run_model(atoms, by_order), args.repeats)

            subs = [atoms[[i for i in range(8) if m >> i & 1]] for m in range(1, 256)]

            def naive(subs=subs, inner=inner):
                for sub in subs:
                    sub.calc = inner
                    sub.get_potential_energy()
                    sub.calc = None

            t_naive = timed(naive, 2)
            print(
                f"{name:>18} {1e3 * t_inner:>14.2f} {1e3 * t_wrapped:>16.2f} "
                f"{ratio:>7.3f} {1e3 * t_mbe:>8.1f} {1e3 * t_naive:>9.1f} "
                f"{t_naive / t_mbe:>8.1f}x"
            )


if __name__ == "__main__":
    main()
