"""Hostile input to labelling: bad calculators and keywords, a file that is not
a store, and two runs on one store."""

import os
import subprocess
import sys

import ase
import ase.io
import numpy as np
import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.compute.labelling import LabelStore, check_calculator, label_structures

LJ = "ase.calculators.lj:LennardJones"


def pair(distance=0.8):
    return ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, distance]])


def test_an_unknown_pyscf_keyword_is_refused_with_the_accepted_ones():
    with pytest.raises(MBEInputError) as error:
        check_calculator("pyscf", {"spin_treatmnt": "fixed"})
    assert str(error.value) == (
        "--calc-kwargs: pyscf does not accept spin_treatmnt (accepted: basis, bond_dim, "
        "charge, conv_tol, grid_level, max_cycle, method, scratch, smearing, spin, "
        "spin_treatment, sweeps, xc)"
    )
    check_calculator("pyscf", {"spin_treatment": "fixed", "xc": "pbe"})


def test_a_keyword_outside_the_declared_parameters_is_warned_about():
    with pytest.warns(UserWarning, match="sigmaa not among the default parameters of " + LJ):
        check_calculator(LJ, {"sigmaa": 1.0})
    check_calculator(LJ, {"sigma": 1.0, "label": "lj"})  # declared, or ase's own


@pytest.mark.parametrize(
    "name, message",
    [
        ("lj", "--calculator: 'lj' is neither pyscf nor module:Class"),
        ("no_such_module:X", "--calculator: 'no_such_module:X': cannot import no_such_module"),
        (
            "ase.calculators.lj:LJ",
            "--calculator: 'ase.calculators.lj:LJ': ase.calculators.lj has no LJ",
        ),
        ("os:system", "--calculator: 'os:system' is not an ase calculator class"),
        ("ase:Atoms", "--calculator: 'ase:Atoms' is not an ase calculator class"),
    ],
)
def test_a_calculator_must_name_an_ase_calculator_class(tmp_path, name, message):
    store = LabelStore(tmp_path / "labels.db")
    with pytest.raises(MBEInputError, match=message):
        label_structures([pair()], name, {}, store)
    assert list(tmp_path.iterdir()) == []  # no empty store, no lock left


def test_a_file_that_is_not_a_store_is_refused(tmp_path, lj_dataset):
    text = tmp_path / "labels.xyz"
    ase.io.write(text, lj_dataset[:2], format="extxyz")
    with pytest.raises(MBEInputError, match=f"^{text}: not a label store of `mtt-mbe label`"):
        LabelStore(text)
    other = tmp_path / "other.db"
    with ase.db.connect(str(other)) as db:
        db.write(pair(), name="not a label")
    with pytest.raises(MBEInputError, match="other.db: not a label store .*row 1 has no key"):
        LabelStore(other)


def test_a_second_run_on_a_store_in_use_is_refused(tmp_path):
    store = LabelStore(tmp_path / "labels.db")
    with store.lock():
        with pytest.raises(MBEInputError) as error:
            label_structures([pair()], LJ, {}, LabelStore(tmp_path / "labels.db"))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'labels.db'}: in use by another labelling run")
    assert f"{os.getpid()}" in message and "labels.db.running" in message
    assert not (tmp_path / "labels.db.running").exists()  # released
    outcome = label_structures([pair()], LJ, {}, store)  # free again
    assert len(outcome.labelled) == 1 and outcome.computed == 1


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    lock = tmp_path / "labels.db.running"
    lock.write_text(f"{gone.stdout.strip()} {os.uname().nodename}")
    outcome = label_structures([pair(), pair(0.9)], LJ, {}, LabelStore(tmp_path / "labels.db"))
    assert len(outcome.labelled) == 2 and not lock.exists()
    energies = [a.get_potential_energy() for a in outcome.labelled]
    assert np.all(np.isfinite(energies)) and energies[0] != energies[1]


def test_an_unreachable_scheduler_is_bad_input(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    from metatrain_mbe.compute import tasks
    from metatrain_mbe.interface.cli import main

    monkeypatch.setattr(tasks, "SCHEDULER_TIMEOUT", 1)
    ase.io.write(tmp_path / "in.xyz", [pair()])
    line = ["label", str(tmp_path / "in.xyz"), "-o", str(tmp_path / "out.xyz")]
    line += ["--calculator", LJ, "--scheduler", "tcp://127.0.0.1:1"]
    assert main(line) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert last.startswith("mtt-mbe label: error: --scheduler tcp://127.0.0.1:1: cannot connect")
    assert not (tmp_path / "out.xyz").exists()
