"""Restricted labels: one spin branch for every structure, so that terms of
separated atoms vanish, with the level of theory recorded and kept apart."""

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import PySCFCalculator  # noqa: E402
from metatrain_mbe.compute.labelling.pyscf_calculator import separated_groups  # noqa: E402
from metatrain_mbe.interface.cli import main  # noqa: E402

#: the paper's basis at a coarse grid: 1-2 s per structure here
SETTINGS = {"basis": "cc-pvdz", "grid_level": 2}


def _label(path, out, store, *extra):
    return main(
        ["label", str(path), "-o", str(out), "--store", str(store), "--grid-level", "2", *extra]
    )


def test_two_h_atoms_6_angstrom_apart_have_no_pair_term(tmp_path, capsys):
    frames = [ase.Atoms("H"), ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 6.0]])]
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    assert _label(tmp_path / "in.xyz", tmp_path / "out.xyz", tmp_path / "s.db") == 0
    atom, pair = ase.io.read(tmp_path / "out.xyz", ":")
    v2 = pair.get_potential_energy() - 2 * atom.get_potential_energy()
    assert abs(v2) < 0.010  # eV
    assert atom.get_potential_energy() == pytest.approx(-12.4368, abs=1e-3)  # unpolarised
    for labelled in (atom, pair):
        assert "spin_treatment=restricted" in labelled.info["mbe_theory"]
        assert "basis=cc-pvdz" in labelled.info["mbe_theory"]
        assert "xc=pbe" in labelled.info["mbe_theory"]
    assert atom.info["mbe_strategy"] == "diis"
    assert pair.info["mbe_strategy"] == "fragment-guess"  # two groups, 6 Å apart

    # another spin treatment is another level of theory: computed again, stored apart
    capsys.readouterr()
    out = tmp_path / "unrestricted.xyz"
    assert _label(tmp_path / "in.xyz", out, tmp_path / "s.db", "--spin", "unrestricted") == 0
    assert "2 distinct, 2 to compute" in capsys.readouterr().out
    assert "spin_treatment=unrestricted" in ase.io.read(out).info["mbe_theory"]


def test_separated_atoms_start_from_their_own_densities():
    far = ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 50], [0, 50, 0]])
    assert [g.tolist() for g in separated_groups(far.positions)] == [[0], [1], [2]]
    atom = ase.Atoms("H")
    atom.calc = PySCFCalculator(**SETTINGS)
    far.calc = PySCFCalculator(**SETTINGS)
    # from PySCF's guess the three degenerate levels get 2, 1 and 0 electrons
    # and the SCF does not converge; from the atoms' densities it starts converged
    assert far.get_potential_energy() == pytest.approx(3 * atom.get_potential_energy(), abs=1e-6)
    assert far.calc.strategy == "fragment-guess"
    assert np.abs(far.get_forces()).max() < 1e-6


@pytest.mark.slow
def test_groups_with_different_fermi_levels_exchange_charge_once_aligned():
    """An H3 (half of the appendix-B square) and an H atom 50 Å apart: their
    half-filled levels lie 1.5 eV apart, so with one Fermi level 0.07 e moves
    to the atom (delocalisation error), which lowers the energy below the
    neutral groups' by about q Δμ / 2 = 0.053 eV. The plain SCF never
    converges; ``aligned-groups`` does, with forces = -dE/dr."""
    square = np.array([[0, 0, 0], [1.4, 0, 0], [1.4, 1.4, 0], [0, 1.4, 0]])
    pair = ase.Atoms("H4", positions=np.vstack([square[:3], [[0.7, 0.7, 50.0]]]))
    parts = [pair[:3], pair[3:]]
    for atoms in (pair, *parts):
        atoms.calc = PySCFCalculator(**SETTINGS)
    neutral = sum(part.get_potential_energy() for part in parts)
    energy = pair.get_potential_energy()
    assert pair.calc.strategy == "aligned-groups"
    assert energy - neutral == pytest.approx(-0.053, abs=0.003)  # eV
    forces = pair.get_forces()
    # the groups attract as charges ±q 50 Å apart: q² e²/(4πε0 R²) = 2.9e-5 eV/Å for 0.071 e
    assert forces[:3, 2].sum() == pytest.approx(-forces[3, 2], rel=1e-3)
    assert 2e-5 < forces[:3, 2].sum() < 4e-5
    step, moved = 1e-3, pair.copy()
    moved.calc = PySCFCalculator(**SETTINGS)
    energies = []
    for sign in (1, -1):
        moved.positions[0, 0] = pair.positions[0, 0] + sign * step
        energies.append(moved.get_potential_energy())
        assert moved.calc.strategy == "aligned-groups"
    assert (energies[1] - energies[0]) / (2 * step) == pytest.approx(forces[0, 0], abs=1e-3)
