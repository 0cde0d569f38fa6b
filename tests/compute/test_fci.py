"""FCI labels: the exact energy in the basis, the lowest state of the right
spin even where states are degenerate, and an expansion whose terms vanish
between fragments far apart."""

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import fci  # noqa: E402
from metatrain_mbe.compute.labelling.pyscf_calculator import PySCFCalculator  # noqa: E402
from metatrain_mbe.interface.cli import main  # noqa: E402

FCI = {"method": "fci", "basis": "sto-6g"}


def energy(atoms, **settings):
    atoms = atoms.copy()
    atoms.calc = PySCFCalculator(**{**FCI, **settings})
    return atoms.get_potential_energy(), atoms.calc.strategy


def square(side=1.4, height=0.0):
    radius = side / np.sqrt(2)
    angles = np.arange(4) * np.pi / 2
    return ase.Atoms(
        "H4", positions=[[radius * np.cos(t), radius * np.sin(t), height] for t in angles]
    )


def test_two_h_atoms_far_apart_are_two_atoms_in_the_singlet():
    # 50 Å apart the singlet and the triplet are degenerate: the eigenvectors of
    # the Hamiltonian mix them, and a test of <S^2> per eigenvector skips both
    atom, solver = energy(ase.Atoms("H"))
    pair, _ = energy(ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 50.0]]))
    assert solver == "exact"
    assert pair == pytest.approx(2 * atom, abs=1e-8)


def test_the_davidson_solver_agrees_with_exact_diagonalisation(monkeypatch):
    exact, solver = energy(square())
    assert solver == "exact"
    monkeypatch.setattr(fci, "EXACT_DETERMINANTS", 0)
    davidson, solver = energy(square())
    assert solver == "davidson"
    assert davidson == pytest.approx(exact, abs=1e-7)


def test_a_determinant_space_too_large_is_refused_before_any_scf():
    from pyscf import gto

    h8 = [("H", (0.0, 0.0, 1.4 * k)) for k in range(8)]  # 40 orbitals in cc-pVDZ
    molecule = gto.M(atom=h8, basis="cc-pvdz", unit="Angstrom", verbose=0)
    with pytest.raises(ValueError, match="8.35e[+]09 determinants, above 5e[+]07"):
        fci.fci_energy(molecule)


def test_fci_terms_between_fragments_far_apart_vanish(tmp_path, capsys):
    # two H2 units 50 Å apart: every term spanning both is zero, the H2 pair term is not
    parent = ase.Atoms("H4", positions=[[0, 0, 0], [0, 0, 0.74], [0, 0, 50], [0, 0, 50.74]])
    parent.info["mbe_parent"] = 0
    ase.io.write(tmp_path / "p.xyz", [parent])
    subclusters = ["subclusters", str(tmp_path / "p.xyz"), "--with-parents"]
    assert main([*subclusters, "-o", str(tmp_path / "s.xyz")]) == 0
    label = ["label", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "l.xyz"), "--method", "fci"]
    assert main([*label, "--basis", "sto-6g"]) == 0
    labelled = ase.io.read(tmp_path / "l.xyz", ":")
    assert all("method=fci" in a.info["mbe_theory"] for a in labelled)
    assert all("forces" not in a.arrays and a.calc.results.get("forces") is None for a in labelled)
    assert main(["analyze", str(tmp_path / "l.xyz"), "-o", str(tmp_path / "out")]) == 0
    import json

    orders = json.loads((tmp_path / "out" / "report.json").read_text())["reference"]["groups"]
    orders = orders["all"]["orders"]
    assert abs(orders["3"]["V_tilde"]["mean"]) < 1e-6 and abs(orders["4"]["V_tilde"]["mean"]) < 1e-6
    assert orders["2"]["V_tilde"]["mean"] < -0.1  # the two H2 bonds
    assert "needs forces" in (tmp_path / "out" / "report.md").read_text()
