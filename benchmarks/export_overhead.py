"""Cost of the exported MBE wrapper against the inner model.

Run: ``OMP_NUM_THREADS=1 python benchmarks/export_overhead.py [--device cuda]``.
For untrained SOAP-BPNN, PET and MACE models (the small test sizes, or
``--paper-size`` for default metatrain hypers), on random 8-atom hydrogen
clusters, it times with metatomic's ase calculator:

- energy + forces of the inner model and of the wrapped model (same path:
  the wrapper's overhead);
- ``mbe::energy_by_order`` of the wrapped model (all 255 sub-clusters in one
  call of the inner model) per 8-mer;
- the naive way: the 255 sub-clusters one by one through the inner model.
"""

import argparse
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
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    atoms = hydrogen_cluster(8, seed=0)
    by_order = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}
    print(
        f"{'model':>18} {'inner E+F ms':>13} {'wrapped E+F ms':>15} {'overhead':>9} "
        f"{'MBE ms':>8} {'naive ms':>9} {'speed-up':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ARCHITECTURES:
            inner_path = export_tiny_model(name, tmp)
            wrapped_path = tmp / f"{name}-mbe.pt"
            export_mbe_model(inner_path, wrapped_path, extensions=tmp / "extensions")
            kwargs = {"extensions_directory": str(tmp / "extensions"), "device": args.device}
            inner = MetatomicCalculator(str(inner_path), **kwargs)
            wrapped = MetatomicCalculator(str(wrapped_path), **kwargs)
            t_inner = timed(energy_and_forces(atoms, inner), args.repeats)
            t_wrapped = timed(energy_and_forces(atoms, wrapped), args.repeats)
            t_mbe = timed(lambda: wrapped.run_model(atoms, by_order), args.repeats)

            subs = [atoms[[i for i in range(8) if m >> i & 1]] for m in range(1, 256)]

            def naive(subs=subs, inner=inner):
                for sub in subs:
                    sub.calc = inner
                    sub.get_potential_energy()
                    sub.calc = None

            t_naive = timed(naive, 2)
            print(
                f"{name:>18} {1e3 * t_inner:>13.2f} {1e3 * t_wrapped:>15.2f} "
                f"{t_wrapped / t_inner:>8.2f}x {1e3 * t_mbe:>8.1f} {1e3 * t_naive:>9.1f} "
                f"{t_naive / t_mbe:>8.1f}x"
            )


if __name__ == "__main__":
    main()
