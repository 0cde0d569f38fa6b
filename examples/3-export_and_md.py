r"""
Export for molecular dynamics, with the m-body energies on demand
=================================================================

``mtt-mbe export`` wraps a model exported by metatrain into a metatomic model
that every metatomic engine runs (ASE, LAMMPS, i-PI) and that keeps the
model's ``energy`` unchanged. It adds outputs that an engine computes only when
it asks for them (:doc:`/export`):

- ``mbe::energy_by_order``: Σ_{\|S\|=m} V(S) for m = 1 .. N, the m-body parts of
  the energy, which sum to it;
- with ``--variants 2,3``: the energy variants ``energy/mbe_2`` and
  ``energy/mbe_3``, the truncated expansions E_2 and E_3, with forces, which an
  engine can run dynamics on instead of the full energy.

This example exports the model of :doc:`2-train_and_report` (trained for two
epochs: its dynamics is not physical, but the machinery is the same) and runs
velocity-Verlet dynamics in ASE with the complete energy, logging E_2, E_3 and
the order sums at a few steps only.

**torch-sim.** metatomic models also run in `torch-sim
<https://github.com/TorchSim/torch-sim>`_ through ``metatomic-torchsim``, which
needs ``torch-sim-atomistic`` ≥ 0.5; the package registry this documentation
is built from has only up to 0.3.0, so this example shows ASE alone.
"""

# %%
# The model
# ---------
#
# The model trained by the previous example; run on its own, this example
# trains it first (the same script).

import os
import runpy
import shutil
import subprocess
import tempfile
from pathlib import Path

# the repository: the folder above examples/ (sphinx-gallery runs an example
# from its folder, without __file__)
ROOT = (Path(__file__).parent if "__file__" in globals() else Path.cwd()).resolve().parent
work = Path(os.environ.get("MBE_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="mbe-example-"))
os.environ["MBE_EXAMPLES_DIR"] = str(work)
model = work / "2-train" / "model.pt"
if not model.exists():
    runpy.run_path(str(ROOT / "examples" / "2-train_and_report.py"))

# %%
# Export
# ------
#
# ``--variants 2,3`` adds E_2 and E_3; PET needs no compiled extensions (a
# SOAP-BPNN's would be collected into ``extensions/``, given to the engines with
# ``extensions_directory``).

run = work / "3-export"
shutil.rmtree(run, ignore_errors=True)
run.mkdir(parents=True)
done = subprocess.run(
    ["mtt-mbe", "export", str(model), "-o", "model-mbe.pt", "--variants", "2,3"],
    cwd=run,
    capture_output=True,
    text=True,
)
if done.returncode:
    raise RuntimeError(f"mtt-mbe export failed:\n{done.stderr}")
print(done.stdout.strip().splitlines()[-1])

# %%
# What the exported model computes: its outputs and their descriptions.

from metatomic.torch import load_atomistic_model  # noqa: E402

exported = load_atomistic_model(str(run / "model-mbe.pt"))
print(exported.metadata().name)
for name, output in exported.capabilities().outputs.items():
    print(f"{name:24s} {output.description}")

# %%
# Dynamics in ASE
# ---------------
#
# One parent of the shipped data, 300 K, 0.25 fs steps, driven by the complete
# ``energy`` (``variants={"energy": "mbe_3"}`` would run on E_3 instead).
# ``MetatomicCalculator(..., additional_outputs=...)`` would compute extra
# outputs at **every** step; ``calc.run_model(atoms, outputs)`` at the logged
# steps only costs nothing at the others, and computes no forces.

import warnings  # noqa: E402

import ase.io  # noqa: E402
import numpy as np  # noqa: E402
from ase import units  # noqa: E402
from ase.md.velocitydistribution import thermalize_momenta  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from metatomic.torch import ModelOutput  # noqa: E402
from metatomic_ase import MetatomicCalculator  # noqa: E402

atoms = ase.io.read(ROOT / "data" / "hydrogen" / "parents.xyz.gz", index=0)
atoms.calc = MetatomicCalculator(str(run / "model-mbe.pt"))
# metatomic-ase computes a stress with every energy, the virial over the cell's
# volume, which an isolated cluster does not have: the warning about the
# resulting NaN stress (never used here) is silenced
warnings.filterwarnings("ignore", "invalid value", RuntimeWarning, "metatomic_ase")
# ase >= 3.29; with an older ase: MaxwellBoltzmannDistribution(atoms, temperature_K=300)
thermalize_momenta(atoms, 300, rng=np.random.default_rng(0))
dynamics = VelocityVerlet(atoms, timestep=0.25 * units.fs)

MBE = {
    "energy/mbe_2": ModelOutput(unit="eV", sample_kind="system"),
    "energy/mbe_3": ModelOutput(unit="eV", sample_kind="system"),
    "mbe::energy_by_order": ModelOutput(unit="eV", sample_kind="system"),
}
log = []


def log_mbe():
    """Time, total and potential energy, E_2, E_3 and the order sums (eV)."""
    results = atoms.calc.run_model(atoms, MBE)
    log.append(
        {
            "time": dynamics.get_time() / units.fs,
            "total": atoms.get_total_energy(),
            "energy": atoms.get_potential_energy(),
            "E_2": results["energy/mbe_2"].block().values.item(),
            "E_3": results["energy/mbe_3"].block().values.item(),
            "orders": results["mbe::energy_by_order"].block().values[0].tolist(),
        }
    )


dynamics.attach(log_mbe, interval=10)
dynamics.run(300)

first, last = log[0], log[-1]
print(f"{len(log)} logged steps of {dynamics.nsteps}")
print(f"total energy drift: {last['total'] - first['total']:+.2e} eV over {last['time']:.0f} fs")
print("order sums at the last step (eV):", [round(v, 3) for v in last["orders"]])
print(f"their sum {sum(last['orders']):.6f} eV, the energy {last['energy']:.6f} eV")

# %%
# The m-body energies along the trajectory: the energy, E_2 and E_3 relative to
# their start, and the total energy, which velocity Verlet conserves.

import matplotlib.pyplot as plt  # noqa: E402

time = [entry["time"] for entry in log]
figure, (energies, orders) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for key, label in [
    ("total", "total energy"),
    ("energy", "E (potential)"),
    ("E_2", "$E_2$"),
    ("E_3", "$E_3$"),
]:
    energies.plot(time, [entry[key] - log[0][key] for entry in log], "o-", label=label)
energies.set_xlabel("time (fs)")
energies.set_ylabel("energy − its value at t = 0 (eV)")
energies.legend()
for m in range(2, len(last["orders"]) + 1):
    orders.plot(time, [entry["orders"][m - 1] for entry in log], "o-", label=f"m = {m}")
orders.set_xlabel("time (fs)")
orders.set_ylabel(r"$\sum_{|S|=m} V(S)$ (eV)")
orders.legend(ncol=2, fontsize="small")
figure.suptitle("MD of a hydrogen 8-mer with the exported model (ASE, velocity Verlet)")

# %%
# Velocity Verlet keeps the total energy to a few meV. The truncations of this
# barely trained model move by tens of eV where its energy moves by a few: its
# own expansion converges only at m = 8 (the order sums, right). A model trained
# with more sub-clusters and epochs has terms, and truncations, closer to the
# reference ones (:doc:`/study`).
#
# The same model runs in LAMMPS (``pair_style metatomic``, with ``variant`` for
# E_K) and in i-PI (``energy_variant=mbe_2``), see :doc:`/export`.
