"""CCSD(T) labels: UCCSD(T) on the lowest stable UHF, against FCI in STO-6G,
through the calculator, the CLI and a store shared with another method."""

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import LabelStore, label_structures  # noqa: E402
from metatrain_mbe.compute.labelling.pyscf_calculator import PySCFCalculator  # noqa: E402
from metatrain_mbe.interface.cli import main  # noqa: E402

CCSD_T = {"method": "ccsd(t)", "basis": "sto-6g"}
FCI = {"method": "fci", "basis": "sto-6g"}


def energy(atoms, **settings):
    atoms = atoms.copy()
    atoms.calc = PySCFCalculator(**settings)
    return atoms.get_potential_energy(), atoms.calc.strategy


def square(side):
    radius = side / np.sqrt(2)
    angles = np.arange(4) * np.pi / 2
    return ase.Atoms("H4", positions=[[radius * np.cos(t), radius * np.sin(t), 0] for t in angles])


def two_h2(gap=1.6):
    """Two H2 units (0.74 Å bonds) side by side, ``gap`` Å apart."""
    return ase.Atoms("H4", positions=[[0, 0, 0], [0.74, 0, 0], [0, gap, 0], [0.74, gap, 0]])


@pytest.mark.parametrize("distance", [0.74, 6.0])
def test_ccsd_t_is_exact_for_two_electrons(distance):
    # measured: |CCSD(T) - FCI| = 8e-11 eV at 0.74 Å, 5e-8 eV at 6 Å (the SCF's
    # 1e-9 Ha threshold); at 6 Å the stability loop breaks the RHF-like start
    # into two atoms (<S^2> = 1)
    pair = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, distance]])
    ccsd_t, strategy = energy(pair, **CCSD_T)
    fci, _ = energy(pair, **FCI)
    assert ccsd_t == pytest.approx(fci, abs=1e-6)
    if distance > 1:
        atom, _ = energy(ase.Atoms("H"), **CCSD_T)
        assert ccsd_t == pytest.approx(2 * atom, abs=1e-6)
        assert "1 stability rotation" in strategy and "<S^2> = 1.00" in strategy


def test_four_atoms_far_apart_are_four_atoms_from_the_spin_broken_guess():
    # from PySCF's default guess the UHF of four H atoms 6 Å apart does not
    # converge (stuck about 36 eV above four atoms); the spin-broken guess
    # starts at the solution (measured: 1e-7 eV from FCI)
    atom, _ = energy(ase.Atoms("H"), **CCSD_T)
    four, strategy = energy(square(6.0), **CCSD_T)
    assert four == pytest.approx(4 * atom, abs=1e-6)
    assert "spin-broken guess" in strategy and "<S^2> = 2.00" in strategy


@pytest.mark.parametrize(
    "atoms, difference, tolerance",
    [
        # two H2 units 1.6 Å apart: measured CCSD(T) - FCI = +1.05e-4 eV
        (two_h2(), 1.05e-4, 1e-5),
        # the 1.4 Å square, near-degenerate: its lowest UHF is spin-broken
        # (<S^2> = 1.30) and CCSD(T) misses by measured +0.243 eV (from the
        # RHF it would be -0.294 eV): a single-reference method's limit
        (square(1.4), 0.243, 0.005),
    ],
    ids=["two-h2", "square"],
)
def test_ccsd_t_against_fci_on_h4(atoms, difference, tolerance):
    ccsd_t, _ = energy(atoms, **CCSD_T)
    fci, _ = energy(atoms, **FCI)
    assert ccsd_t - fci == pytest.approx(difference, abs=tolerance)


def test_label_ccsd_t_through_the_cli(tmp_path):
    ase.io.write(tmp_path / "s.xyz", [two_h2(), ase.Atoms("H")])
    label = ["label", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "l.xyz")]
    assert main([*label, "--method", "ccsd(t)", "--basis", "sto-6g"]) == 0
    labelled = ase.io.read(tmp_path / "l.xyz", ":")
    assert all("method=ccsd(t)" in a.info["mbe_theory"] for a in labelled)
    assert all(a.info["mbe_strategy"].startswith("uhf from the") for a in labelled)
    assert all(a.calc.results.get("forces") is None for a in labelled)


def test_a_store_keeps_the_labels_of_two_methods_apart(tmp_path):
    frames = [square(1.4)]
    store = LabelStore(tmp_path / "labels.db")
    first = label_structures(frames, "pyscf", CCSD_T, store)
    second = label_structures(frames, "pyscf", FCI, store)
    assert first.computed == second.computed == 1  # nothing taken from the other method
    ccsd_t, fci = (o.labelled[0].get_potential_energy() for o in (first, second))
    assert ccsd_t - fci == pytest.approx(0.243, abs=0.005)
    again = label_structures(frames, "pyscf", CCSD_T, store)
    assert again.computed == 0 and again.labelled[0].get_potential_energy() == ccsd_t
