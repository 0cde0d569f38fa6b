"""Charge and spin of each structure honoured by ``mtt-mbe label``: ase's and
fairchem's conventions (``info["charge"]``, ``info["spin"]`` = 2S + 1,
``initial_charges``, ``initial_magmoms``), checked before anything is
computed, part of the store key, recorded with each label."""

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import LabelStore, PySCFCalculator  # noqa: E402
from metatrain_mbe.compute.labelling.executor import full_settings  # noqa: E402
from metatrain_mbe.compute.labelling.store import (  # noqa: E402
    calculator_description,
    structure_key,
)
from metatrain_mbe.interface.cli import main  # noqa: E402

FAST = {"basis": "sto-3g", "grid_level": 1}


def h2(distance=0.74, **info):
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, distance]])
    atoms.info.update(info)
    return atoms


def _label(tmp_path, frames, *extra):
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    line = ["label", str(tmp_path / "in.xyz"), "-o", str(tmp_path / "out.xyz")]
    line += ["--store", str(tmp_path / "s.db"), "--basis", "sto-3g", "--grid-level", "1"]
    return main([*line, *extra])


def _direct(atoms, **settings):
    atoms = ase.Atoms(atoms.numbers, atoms.positions)
    atoms.calc = PySCFCalculator(**FAST, **settings)
    return atoms.get_potential_energy()


def test_a_cation_is_labelled_as_one_and_stored_apart(tmp_path, capsys):
    frames = [h2(), h2(charge=0, spin=1), h2(charge=1)]
    assert _label(tmp_path, frames) == 0
    # the neutral structure stated or not is one computation, the cation another
    assert "3 structures, 2 distinct, 2 to compute" in capsys.readouterr().out
    neutral, stated, cation = ase.io.read(tmp_path / "out.xyz", ":")
    assert cation.get_potential_energy() == pytest.approx(_direct(cation, charge=1), abs=1e-6)
    # about the ionisation energy of H2 (15.4 eV; 17.9 eV with PBE/STO-3G)
    assert 12 < cation.get_potential_energy() - neutral.get_potential_energy() < 20
    assert stated.get_potential_energy() == neutral.get_potential_energy()
    assert (cation.info["charge"], cation.info["spin"]) == (1, 2)  # H2+: 2S = 1, a doublet
    assert (neutral.info["charge"], neutral.info["spin"]) == (0, 1)
    assert "charge=0" in cation.info["mbe_theory"]  # the settings: the level of theory
    rows = LabelStore(tmp_path / "s.db").entries()
    assert len(rows) == 2
    # a structure that states nothing keeps the key it had before
    settings = full_settings("pyscf", {**FAST, "xc": "pbe", "smearing": 0.025})
    old_key = structure_key(frames[0], calculator_description("pyscf", settings))
    assert old_key in rows


def test_a_calculator_charge_sets_the_lowest_spin_of_the_electrons_left(tmp_path):
    assert _label(tmp_path, [h2()], "--calc-kwargs", '{"charge": 1}') == 0
    cation = ase.io.read(tmp_path / "out.xyz")
    assert (cation.info["charge"], cation.info["spin"]) == (1, 2)
    assert cation.get_potential_energy() == pytest.approx(_direct(cation, charge=1), abs=1e-6)


def test_initial_magmoms_give_the_triplet_with_fixed_spin(tmp_path):
    triplet = h2()
    triplet.set_initial_magnetic_moments([1, 1])
    assert _label(tmp_path, [h2(), triplet], "--spin", "fixed") == 0
    singlet, labelled = ase.io.read(tmp_path / "out.xyz", ":")
    assert labelled.info["spin"] == 3 and singlet.info["spin"] == 1
    assert labelled.get_potential_energy() > singlet.get_potential_energy() + 5  # eV
    direct = _direct(triplet, spin=2, spin_treatment="fixed")
    assert labelled.get_potential_energy() == pytest.approx(direct, abs=1e-6)


def _with(atoms, magmoms=None, charges=None):
    if magmoms is not None:
        atoms.set_initial_magnetic_moments(magmoms)
    if charges is not None:
        atoms.set_initial_charges(charges)
    return atoms


@pytest.mark.parametrize(
    "atoms, extra, message",
    [
        (h2(charge=1, spin=1), [], "1 electrons (charge 1) cannot have 2S = 0"),
        (h2(charge=3), [], "-1 electrons (charge 3) cannot have 2S = 1"),
        (h2(spin=2), [], "2 electrons (charge 0) cannot have 2S = 1"),  # 2S given as spin
        (h2(spin=0), [], "field 'spin'=0 is below 1; it is the spin multiplicity"),
        (h2(charge=0.5), [], "field 'charge'=0.5 is not a whole number"),
        (_with(h2(), magmoms=[1, 0]), [], "2 electrons (charge 0) cannot have 2S = 1"),
        (_with(h2(), charges=[0.5, 0]), [], "'initial_charges'=0.5 is not a whole number"),
        (_with(h2(charge=1), charges=[0, 0]), [], "gives the charge 0 while field 'charge'=1"),
        (_with(h2(spin=1), magmoms=[1, 1]), ["--spin", "fixed"], "gives 2S 2 while field"),
        (_with(h2(), magmoms=[1, 1]), [], "states 2S = 2, which --spin restricted"),
        (h2(charge=1), ["--calc-kwargs", '{"charge": 2}'], "states charge 1, the calculator"),
        (h2(charge=1), ["--smearing", "0"], "restricted spin with 1 electrons needs smearing"),
    ],
)
def test_a_state_that_cannot_be_computed_is_refused_up_front(
    tmp_path, capsys, atoms, extra, message
):
    atoms.info.update({"mbe_parent": 4, "mbe_atoms": np.array([2, 5])})
    assert _label(tmp_path, [h2(), atoms], *extra) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing computed
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("mtt-mbe label: error: ")
    assert "in.xyz:frame 1 (mbe_parent=4, mbe_atoms=[2 5]): " in line
    assert message in line
    assert not (tmp_path / "out.xyz").exists() and not (tmp_path / "s.db").exists()


class StateEcho(Calculator):
    """Energy from the charge and spin fields it gets (eV), forces zero."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        info, a = self.atoms.info, self.atoms
        self.results["energy"] = (
            1000 * info.get("charge", 0)
            + 100 * info.get("spin", 0)
            + 10 * a.get_initial_charges().sum()
            + a.get_initial_magnetic_moments().sum()
        )
        self.results["forces"] = np.zeros((len(a), 3))


def test_other_calculators_get_the_charge_and_spin_fields(tmp_path, capsys):
    radical = _with(h2(charge=1, spin=2), magmoms=[1, 0], charges=[1, 0])
    calculator = ["--calculator", f"{__name__}:StateEcho"]
    assert _label(tmp_path, [h2(), radical], *calculator) == 0
    assert "2 distinct" in capsys.readouterr().out
    plain, labelled = ase.io.read(tmp_path / "out.xyz", ":")
    assert plain.get_potential_energy() == 0
    assert labelled.get_potential_energy() == 1000 + 200 + 10 + 1
    assert (labelled.info["charge"], labelled.info["spin"]) == (1, 2)  # as given
    assert "spin" not in plain.info  # written for PySCF labels only
