"""DMRG labels with block2: FCI's energy in STO-6G, the bond dimension and
sweeps in the level of theory, scratch folders removed, and a clear refusal
without block2."""

import importlib.util

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from metatrain_mbe.compute.labelling import (  # noqa: E402
    LabelStore,
    dmrg,
    label_structures,
)
from metatrain_mbe.compute.labelling.executor import full_settings  # noqa: E402
from metatrain_mbe.compute.labelling.pyscf_calculator import PySCFCalculator  # noqa: E402
from metatrain_mbe.errors import MBEInputError  # noqa: E402
from metatrain_mbe.interface.cli import main  # noqa: E402

DMRG = {"method": "dmrg", "basis": "sto-6g"}
FCI = {"method": "fci", "basis": "sto-6g"}
block2 = pytest.mark.skipif(
    importlib.util.find_spec("pyblock2") is None, reason="needs block2 (pip install block2)"
)


def energy(atoms, **settings):
    atoms = atoms.copy()
    atoms.calc = PySCFCalculator(**settings)
    return atoms.get_potential_energy(), atoms.calc.strategy


def square(side=1.4):
    radius = side / np.sqrt(2)
    angles = np.arange(4) * np.pi / 2
    return ase.Atoms("H4", positions=[[radius * np.cos(t), radius * np.sin(t), 0] for t in angles])


STRUCTURES = {
    "square": square(),
    "two-h2": ase.Atoms("H4", positions=[[0, 0, 0], [0.74, 0, 0], [0, 1.6, 0], [0.74, 1.6, 0]]),
    "h3-doublet": ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 0.9], [0.5, 0, 1.9]]),
    "h-atom": ase.Atoms("H"),
}


@block2
@pytest.mark.parametrize("name", list(STRUCTURES))
def test_dmrg_equals_fci(name, tmp_path):
    # measured |DMRG - FCI| at M = 250: 1e-10 eV (square), 4e-11 eV (two H2),
    # 0 (H3: ROHF orbitals, spin 1/2; H atom: one orbital); about 1 s each
    atoms = STRUCTURES[name]
    value, strategy = energy(atoms, **DMRG, scratch=str(tmp_path))
    exact, _ = energy(atoms, **FCI)
    assert value == pytest.approx(exact, abs=1e-6)
    assert strategy.startswith("dmrg M=250:")
    assert list(tmp_path.iterdir()) == []  # the calculation's scratch folder is gone


def test_dmrg_settings_are_in_its_level_of_theory_alone():
    plain = full_settings("pyscf", {})
    assert not {"bond_dim", "sweeps", "scratch"} & set(plain)  # dft keys unchanged
    settings = full_settings("pyscf", {**DMRG, "scratch": "/somewhere"})
    assert settings["bond_dim"] == dmrg.BOND_DIM and settings["sweeps"] == dmrg.SWEEPS
    assert "scratch" not in settings  # where it runs is no level of theory


@block2
def test_two_bond_dimensions_never_mix_in_a_store(tmp_path):
    frames = [square()]
    store = LabelStore(tmp_path / "labels.db")
    small = label_structures(frames, "pyscf", {**DMRG, "bond_dim": 4}, store)
    large = label_structures(frames, "pyscf", DMRG, store)
    assert small.computed == large.computed == 1
    small, large = small.labelled[0], large.labelled[0]
    assert "bond_dim=4;" in small.info["mbe_theory"]
    assert "bond_dim=250;" in large.info["mbe_theory"]


@block2
def test_label_dmrg_through_the_cli(tmp_path):
    ase.io.write(tmp_path / "s.xyz", [STRUCTURES["two-h2"], ase.Atoms("H")])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    label = ["label", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "l.xyz"), "--method", "dmrg"]
    options = ["--basis", "sto-6g", "--bond-dim", "40", "--sweeps", "12", "--scratch", str(scratch)]
    assert main([*label, *options]) == 0
    labelled = ase.io.read(tmp_path / "l.xyz", ":")
    assert all("bond_dim=40;" in a.info["mbe_theory"] for a in labelled)
    assert all("sweeps=12;" in a.info["mbe_theory"] for a in labelled)
    assert all("scratch" not in a.info["mbe_theory"] for a in labelled)
    assert all(a.calc.results.get("forces") is None for a in labelled)
    assert list(scratch.iterdir()) == []


@block2
def test_a_dmrg_still_changing_fails(monkeypatch):
    monkeypatch.setattr(dmrg, "CONVERGED", -1.0)  # no change is small enough
    with pytest.raises(RuntimeError, match="DMRG not converged .* raise --sweeps"):
        energy(square(), **DMRG)


def test_bad_dmrg_options_are_refused(tmp_path, capsys):
    ase.io.write(tmp_path / "s.xyz", [ase.Atoms("H")])
    label = ["label", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "l.xyz")]
    assert main([*label, "--bond-dim", "40"]) == 2
    assert "--bond-dim: applies to --method dmrg only" in capsys.readouterr().err
    assert main([*label, "--method", "dmrg", "--sweeps", str(dmrg.MIN_SWEEPS - 1)]) == 2
    assert f"(>= {dmrg.MIN_SWEEPS})" in capsys.readouterr().err
    with pytest.raises(ValueError, match="scratch: .* is not a folder"):
        dmrg.check_options(dmrg.BOND_DIM, dmrg.SWEEPS, str(tmp_path / "missing"))


def test_the_help_states_the_dmrg_defaults(capsys):
    assert main(["label", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {dmrg.BOND_DIM};" in text and f"(default {dmrg.SWEEPS})" in text


def test_without_block2_dmrg_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyblock2" else find_spec(name, *a),
    )
    message = "--method dmrg needs block2 (pip install block2)"
    with pytest.raises(MBEInputError, match=r"needs block2 \(pip install block2\)"):
        PySCFCalculator(**DMRG)
    ase.io.write(tmp_path / "s.xyz", [ase.Atoms("H")])
    assert (
        main(
            [
                "label",
                str(tmp_path / "s.xyz"),
                "-o",
                str(tmp_path / "l.xyz"),
                *"--method dmrg".split(),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "l.xyz.db").exists()  # refused before the store is made
