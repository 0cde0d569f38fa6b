"""Exported models with energy variants in MD engines: ASE (NVE, cost of a
step) and i-PI (NVE through its metatomic driver over a unix socket)."""

import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from metatomic.torch import ModelOutput
from metatomic_ase import MetatomicCalculator

from ..conftest import hydrogen_cluster
from ..models import export_tiny_model
from .test_export_variants import export

#: metatomic's ase calculator symmetrises the (NaN) stress of a cluster; ase
#: 3.29 renames MaxwellBoltzmannDistribution (the project supports ase >= 3.23)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Use thermalize_momenta:DeprecationWarning"),
]

#: largest |E_tot(t) - E_tot(0)| (eV) of the NVE runs: 5 H atoms at 300 K,
#: 400 velocity-Verlet steps of 0.25 fs in ASE, 200 in i-PI; measured 4e-5 to
#: 1e-4 eV (full energy and E_2, both engines), while the kinetic energy swings
#: by 0.17 to 0.38 eV
DRIFT_BOUND = 1e-3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny hydrogen PET (``plain``) and its export with ``--variants 2,4``."""
    directory = tmp_path_factory.mktemp("engines")
    plain = export_tiny_model("pet", directory)
    return plain, export(plain, directory / "mbe.pt", "--variants", "2,4")


def calculator(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetatomicCalculator(
            str(path), extensions_directory=str(path.parent / "extensions"), **options
        )


def nve(calc, steps=400, timestep=0.25):
    """Total and kinetic energies (eV) along velocity-Verlet NVE of a 5-atom
    hydrogen cluster at 300 K, every step."""
    atoms = hydrogen_cluster(5, seed=5)
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(atoms)
    ZeroRotation(atoms)
    dynamics = VelocityVerlet(atoms, timestep=timestep * units.fs)
    total, kinetic = [atoms.get_total_energy()], [atoms.get_kinetic_energy()]
    for _ in range(steps):
        dynamics.run(1)
        total.append(atoms.get_total_energy())
        kinetic.append(atoms.get_kinetic_energy())
    return np.array(total), np.array(kinetic)


def test_ase_nve_conserves_energy_with_the_full_and_a_truncated_energy(models):
    _, path = models
    full, full_kinetic = nve(calculator(path))
    truncated, truncated_kinetic = nve(calculator(path, variants={"energy": "mbe_2"}))
    assert abs(full[0] - truncated[0]) > 1e-2  # E_2 drives the second run
    for total, kinetic in ((full, full_kinetic), (truncated, truncated_kinetic)):
        assert np.ptp(kinetic) > 0.05  # the atoms move
        assert np.abs(total - total[0]).max() < DRIFT_BOUND


def median_step(calc, frames):
    """Median time (s) of energy and forces of ``frames`` through ``calc``,
    the first three calls (TorchScript's profiling runs) left out."""
    times = []
    for frame in frames:
        atoms = frame.copy()
        atoms.calc = calc
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def test_energy_alone_costs_what_the_plain_model_costs(models):
    """An MD step (energy, forces) of the exported model asked for ``energy``
    only costs what the plain model's does: no sub-cluster is evaluated. The
    E_4 variant (162 sub-clusters of 8 atoms), asked as the energy or as an
    additional output (computed at every step), costs several times more."""
    plain, path = models
    rng = np.random.default_rng(1)
    reference = hydrogen_cluster(8, seed=27)
    frames = []
    for _ in range(25):
        frame = reference.copy()
        frame.positions += rng.normal(scale=0.01, size=frame.positions.shape)
        frames.append(frame)
    additional = {"energy/mbe_4": ModelOutput(unit="eV", sample_kind="system")}
    calculators = {
        "plain": calculator(plain),
        "energy": calculator(path),
        "variant": calculator(path, variants={"energy": "mbe_4"}),
        "additional": calculator(path, additional_outputs=additional),
    }
    times = {name: [] for name in calculators}
    for _ in range(3):  # interleaved, so that the machine's load is shared
        for name, calc in calculators.items():
            times[name].append(median_step(calc, frames))
    step = {name: statistics.median(values) for name, values in times.items()}
    assert step["energy"] < 1.5 * step["plain"], step
    assert step["variant"] > 1.5 * step["plain"], step
    assert step["additional"] > 1.5 * step["plain"], step


#: i-PI NVE of the cluster in ``init.xyz`` (a 30 Å periodic box, as i-PI always
#: sends a cell), forces from the driver at unix socket ``/tmp/ipi_ADDRESS``
IPI_INPUT = """<simulation verbosity='low' safe_stride='1000'>
  <output prefix='md'>
    <properties stride='1' filename='out'>
      [ step, conserved{{electronvolt}}, potential{{electronvolt}}, kinetic_md{{electronvolt}} ]
    </properties>
  </output>
  <total_steps>{steps}</total_steps>
  <prng><seed>31415</seed></prng>
  <ffsocket name='driver' mode='unix'><address>{address}</address></ffsocket>
  <system>
    <initialize nbeads='1'>
      <file mode='ase' units='angstrom'>init.xyz</file>
      <velocities mode='thermal' units='kelvin'>300</velocities>
    </initialize>
    <forces><force forcefield='driver'/></forces>
    <motion mode='dynamics'>
      <dynamics mode='nve'><timestep units='femtosecond'>0.25</timestep></dynamics>
    </motion>
    <ensemble><temperature units='kelvin'>300</temperature></ensemble>
  </system>
</simulation>
"""


def run_ipi(directory, model, variant=None, steps=200):
    """NVE with i-PI and its metatomic driver (``energy_variant=variant``):
    the columns step, conserved, potential and kinetic energy (eV) of every step."""
    import ipi.pes.metatomic  # noqa: F401  the driver; ipi is in the `test` extra

    directory.mkdir()
    atoms = hydrogen_cluster(5, seed=5)
    atoms.positions += 15.0 - atoms.positions.mean(axis=0)
    atoms.cell = np.eye(3) * 30.0
    atoms.pbc = True
    ase.io.write(directory / "init.xyz", atoms, format="extxyz")
    address = f"mbe-{os.getpid()}-{variant or 'full'}"
    (directory / "input.xml").write_text(IPI_INPUT.format(steps=steps, address=address))
    binaries = Path(sys.executable).parent
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    socket = Path(f"/tmp/ipi_{address}")
    with open(directory / "i-pi.log", "w") as log:
        server = subprocess.Popen(
            [str(binaries / "i-pi"), "input.xml"],
            cwd=directory,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        deadline = time.monotonic() + 120
        while not socket.exists():
            assert server.poll() is None, (directory / "i-pi.log").read_text()
            assert time.monotonic() < deadline, "i-PI opened no socket"
            time.sleep(0.2)
        options = f"template=init.xyz,model={model},extensions={model.parent / 'extensions'}"
        if variant is not None:
            options += f",energy_variant={variant}"
        driver = subprocess.run(
            [str(binaries / "i-pi-py_driver"), "-u", "-a", address, "-m", "metatomic"]
            + ["-o", options],
            cwd=directory,
            capture_output=True,
            text=True,
            env=environment,
            timeout=600,
        )
        assert driver.returncode == 0, driver.stderr
        assert server.wait(timeout=120) == 0, (directory / "i-pi.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return np.loadtxt(directory / "md.out")


def test_ipi_nve_with_the_full_and_a_truncated_energy(tmp_path, models):
    """i-PI 3.3's metatomic driver runs the exported model over a unix socket:
    its potential is ASE's ``energy`` or the ``energy_variant`` one, and NVE
    conserves the energy with both."""
    _, path = models
    potentials = []
    for variant in (None, "mbe_2"):
        directory = tmp_path / (variant or "full")
        table = run_ipi(directory, path, variant)
        assert table.shape == (201, 4) and table[-1, 0] == 200
        initial = ase.io.read(directory / "init.xyz")
        initial.calc = calculator(path, variants={"energy": variant})
        assert table[0, 2] == pytest.approx(initial.get_potential_energy(), abs=1e-6)
        potentials.append(table[0, 2])
        conserved = table[:, 1]
        assert np.ptp(table[:, 3]) > 0.05  # the atoms move
        assert np.abs(conserved - conserved[0]).max() < DRIFT_BOUND
    assert abs(potentials[0] - potentials[1]) > 1e-2
