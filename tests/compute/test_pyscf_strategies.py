"""The SCF strategies of the PySCF adapter: the structures they exist for, the
spin branch they keep, and the lowest-energy choice among fallbacks."""

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import (
    PySCFCalculator,  # noqa: E402
    pyscf_calculator,  # noqa: E402
)

#: parent 100 of the shipped data (low density), atoms [3 4 7]: three H atoms
#: 2.75-2.91 Å apart. Two nearly degenerate levels share the Fermi level, and
#: with 0.025 eV smearing their occupations swing from one cycle to the next:
#: DIIS, damping, the Hückel guess and Newton all fail (UKS-PBE, cc-pVDZ).
PARENT_100_ATOMS_3_4_7 = [
    [-0.20497636, 1.54957053, 0.87853731],
    [-0.79407518, -0.73568581, -0.82674066],
    [1.67216943, -0.4642187, 0.35454236],
]
#: its energy (eV) at grid level 2, also reached by hand-made smearing
#: schedules of other step sizes (within 3e-6 eV)
ENERGY_3_4_7 = -38.429777

FAST = {"basis": "sto-3g", "smearing": 0.025, "grid_level": 1}


def test_parent_100_atoms_3_4_7_is_made_from_the_shipped_parent():
    from pathlib import Path

    data = Path(__file__).parents[2] / "data" / "hydrogen"
    parents = ase.io.read(data / "parents.xyz.gz", ":")
    parent = next(a for a in parents if a.info["mbe_parent"] == 100)
    assert np.allclose(parent.positions[[3, 4, 7]], PARENT_100_ATOMS_3_4_7, atol=1e-8)


@pytest.mark.slow
def test_every_strategy_then_the_smearing_schedule_converges_parent_100_atoms_3_4_7():
    atoms = ase.Atoms("H3", positions=PARENT_100_ATOMS_3_4_7)
    atoms.calc = PySCFCalculator(grid_level=2)
    energy = atoms.get_potential_energy()
    # the first four fail (the structure that failed every strategy before)
    assert atoms.calc.strategy == "smearing-schedule"
    assert list(atoms.calc.solutions) == ["smearing-schedule"]
    assert energy == pytest.approx(ENERGY_3_4_7, abs=1e-4)
    forces = atoms.get_forces()
    assert np.isfinite(forces).all() and np.abs(forces.sum(0)).max() < 1e-3


@pytest.mark.slow
def test_smearing_schedule_alone(monkeypatch):
    monkeypatch.setattr(pyscf_calculator, "STRATEGIES", ("smearing-schedule",))
    atoms = ase.Atoms("H3", positions=PARENT_100_ATOMS_3_4_7)
    atoms.calc = PySCFCalculator(grid_level=2)
    assert atoms.get_potential_energy() == pytest.approx(ENERGY_3_4_7, abs=1e-4)


def test_smearing_schedule_reaches_the_default_solution_where_diis_converges(monkeypatch):
    atoms = ase.Atoms("H3", positions=[[0, 0, 0], [0.8, 0, 0], [0.3, 1.1, 0.2]])
    energies = {}
    for strategy in ("diis", "smearing-schedule"):
        monkeypatch.setattr(pyscf_calculator, "STRATEGIES", (strategy,))
        atoms.calc = PySCFCalculator(**FAST)
        energies[strategy] = atoms.get_potential_energy()
        assert atoms.calc.strategy == strategy
    assert energies["smearing-schedule"] == pytest.approx(energies["diis"], abs=1e-5)


def test_newton_stays_on_the_unpolarised_branch_of_odd_electron_counts(monkeypatch):
    # integer occupations make the H atom a polarised doublet; started from it,
    # the smeared SCF would stay polarised (1.1 eV lower than the default's).
    # cc-pVDZ: with one orbital (STO-3G) PySCF's Newton solver has nothing to rotate
    energies = {}
    for strategy in ("diis", "newton"):
        monkeypatch.setattr(pyscf_calculator, "STRATEGIES", (strategy,))
        atom = ase.Atoms("H")
        atom.calc = PySCFCalculator(**{**FAST, "basis": "cc-pvdz"})
        energies[strategy] = atom.get_potential_energy()
    assert energies["diis"] == pytest.approx(-12.437, abs=0.01)  # unpolarised
    assert energies["newton"] == pytest.approx(energies["diis"], abs=1e-5)


class _DefaultFails(PySCFCalculator):
    def _run(self, mol, strategy):
        if strategy == "diis":
            raise RuntimeError("made to fail")
        return super()._run(mol, strategy)


def test_when_the_default_fails_every_fallback_runs_and_the_lowest_wins():
    atoms = ase.Atoms("H4", positions=[[0, 0, 0], [0.75, 0, 0], [0, 1.6, 0], [0.75, 1.6, 0.1]])
    atoms.calc = _DefaultFails(**FAST)
    energy = atoms.get_potential_energy()
    solutions = atoms.calc.solutions
    assert "diis" not in solutions and len(solutions) >= 2
    assert atoms.calc.strategy == min(solutions, key=solutions.get)
    # the label is the energy E of the chosen solution; the choice is by the
    # free energy E - σS, which differs from E by the (small) smearing entropy
    assert abs(energy - solutions[atoms.calc.strategy]) < 0.01


def test_when_the_default_converges_nothing_else_runs():
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    atoms.calc = PySCFCalculator(**FAST)
    atoms.get_potential_energy()
    assert atoms.calc.strategy == "diis" and list(atoms.calc.solutions) == ["diis"]


def test_a_schedule_out_of_scf_runs_is_not_converged(monkeypatch):
    # a schedule that stops before the requested width must not return the
    # (converged) SCF of a wider smearing
    monkeypatch.setattr(pyscf_calculator, "STRATEGIES", ("smearing-schedule",))
    monkeypatch.setattr(pyscf_calculator, "SCHEDULE_MAX_SCF", 3)
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]])
    atoms.calc = PySCFCalculator(**FAST)
    with pytest.raises(pyscf_calculator.SCFError, match="smearing-schedule: not converged"):
        atoms.get_potential_energy()
