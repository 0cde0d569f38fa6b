import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import ase
import ase.io
import numpy as np
import pytest

pytest.importorskip("pyscf")

from ase.calculators.lj import LennardJones  # noqa: E402

from metatrain_mbe.compute.labelling import (  # noqa: E402
    LabelStore,
    PySCFCalculator,
    compute_label,
    spin_of,
)
from metatrain_mbe.compute.tasks import map_tasks  # noqa: E402
from metatrain_mbe.interface.cli import main  # noqa: E402

FAST = {"basis": "sto-3g", "smearing": 0.025, "grid_level": 1}


def chain(n, spacing=0.9, seed=0):
    rng = np.random.default_rng(seed)
    positions = np.zeros((n, 3))
    positions[:, 0] = np.arange(n) * spacing
    return ase.Atoms("H" * n, positions=positions + rng.normal(scale=0.05, size=(n, 3)))


def test_spin_rule():
    assert [spin_of([1] * n) for n in range(1, 5)] == [1, 0, 1, 0]
    calc = PySCFCalculator(**FAST)
    atoms = chain(3)
    atoms.calc = calc
    atoms.get_potential_energy()
    assert calc.strategy == "diis"


def test_the_h_atom_is_unpolarised_unless_the_spin_is_fixed():
    energies = {}
    for treatment in ("restricted", "unrestricted", "fixed"):
        atom = ase.Atoms("H")
        atom.calc = PySCFCalculator(**FAST, spin_treatment=treatment)
        energies[treatment] = atom.get_potential_energy()
    # one Fermi level for α and β keeps the atom unpolarised, as the restricted SCF
    assert energies["unrestricted"] == pytest.approx(energies["restricted"], abs=1e-6)
    # the spin-polarised doublet is far below the unpolarised atom
    assert energies["fixed"] < energies["restricted"] - 0.5


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3])
def test_forces_are_minus_the_energy_gradient(n):
    # grid level 3: coarser grids move with the atoms and spoil finite differences
    settings = {**FAST, "grid_level": 3}
    atoms = chain(n, seed=n)
    atoms.calc = PySCFCalculator(**settings)
    forces = atoms.get_forces()
    delta = 1e-4
    for atom, axis in [(0, 0), (n - 1, 1)]:
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * delta
            moved.calc = PySCFCalculator(**settings)
            energies.append(moved.get_potential_energy())
        assert forces[atom, axis] == pytest.approx(
            -(energies[0] - energies[1]) / (2 * delta), abs=2e-4
        )


#: a 4-atom sub-cluster of the shipped high-density data on which DIIS, damping
#: and the Hückel guess all failed (UKS-PBE, cc-pVDZ, 0.025 eV smearing) while
#: PySCF's extra diagonalisation after convergence ran (DIIS converges it now)
HARD_H4 = [
    [0.558, 0.433, -0.389],
    [1.389, 0.857, 1.423],
    [-0.675, 0.497, -0.855],
    [-0.961, -1.595, -0.155],
]


@pytest.mark.slow
def test_newton_strategy_works_with_smearing(monkeypatch):
    # PySCF's Newton solver cannot handle fractional occupations: the strategy
    # must converge integer occupations first, then the smeared SCF
    from metatrain_mbe.compute.labelling import pyscf_calculator

    monkeypatch.setattr(pyscf_calculator, "STRATEGIES", ("newton",))
    atoms = ase.Atoms("H4", positions=HARD_H4)
    atoms.calc = PySCFCalculator(grid_level=2)
    energy = atoms.get_potential_energy()
    assert atoms.calc.strategy == "newton"
    assert energy == pytest.approx(-55.2535243, abs=1e-5)
    assert np.isfinite(atoms.get_forces()).all()
    assert np.abs(atoms.get_forces().sum(0)).max() < 1e-3


def _label_args(path, out, store, *extra):
    return [
        "label",
        str(path),
        "-o",
        str(out),
        "--store",
        str(store),
        "--basis",
        "sto-3g",
        "--grid-level",
        "1",
        *extra,
    ]


@pytest.mark.slow
def test_identical_inputs_once_and_failures_recorded(tmp_path, capsys):
    frames = [chain(2), chain(3), chain(2), chain(4)]
    frames[1].info["mbe_parent"] = 7
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    # an even electron count cannot have 2S = 1: those structures fail
    code = main(
        _label_args(tmp_path / "in.xyz", tmp_path / "out.xyz", tmp_path / "s.db", "--unpaired", "1")
    )
    assert code == 3
    out = ase.io.read(tmp_path / "out.xyz", ":")
    assert [len(a) for a in out] == [3]
    error = capsys.readouterr().err
    assert "3 structures failed" in error and "frame 3" in error
    rows = LabelStore(tmp_path / "s.db").entries()
    assert len(rows) == 3  # chain(2) twice: one row
    assert sorted(r["status"] for r in rows.values()) == ["failed", "failed", "ok"]


def _rows(path):
    try:
        with sqlite3.connect(path) as db:
            return db.execute("select count(*) from systems").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


@pytest.mark.slow
def test_killed_run_resumes_without_duplicates(tmp_path):
    frames = [chain(2 + k % 2, spacing=0.8 + 0.02 * k) for k in range(20)]
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    command = [
        sys.executable,
        "-m",
        "metatrain_mbe",
        *_label_args(tmp_path / "in.xyz", tmp_path / "out.xyz", tmp_path / "s.db"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        assert process.poll() is None, "the label run ended before it was killed"
        if (tmp_path / "s.db").exists() and _rows(tmp_path / "s.db") >= 5:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = _rows(tmp_path / "s.db")
    assert 5 <= killed_at < 20, "the run must be killed half-way"
    assert not (tmp_path / "out.xyz").exists()

    assert main(_label_args(tmp_path / "in.xyz", tmp_path / "out.xyz", tmp_path / "s.db")) == 0
    assert main(_label_args(tmp_path / "in.xyz", tmp_path / "ref.xyz", tmp_path / "r.db")) == 0
    assert _rows(tmp_path / "s.db") == 20
    resumed = ase.io.read(tmp_path / "out.xyz", ":")
    reference = ase.io.read(tmp_path / "ref.xyz", ":")
    for a, b in zip(resumed, reference, strict=True):
        assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-6)


def test_any_ase_calculator_and_bad_options(tmp_path, capsys):
    frames = [chain(3)]
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    assert (
        main(
            [
                "label",
                str(tmp_path / "in.xyz"),
                "-o",
                str(tmp_path / "lj.xyz"),
                "--calculator",
                "ase.calculators.lj:LennardJones",
                "--calc-kwargs",
                '{"sigma": 0.7, "epsilon": 0.01}',
            ]
        )
        == 0
    )
    labelled = ase.io.read(tmp_path / "lj.xyz")
    assert labelled.get_potential_energy() != 0
    assert (
        main(
            [
                "label",
                str(tmp_path / "in.xyz"),
                "-o",
                str(tmp_path / "x.xyz"),
                "--calc-kwargs",
                "{not json",
            ]
        )
        == 2
    )
    assert "--calc-kwargs: not JSON" in capsys.readouterr().err
    periodic = chain(2)
    periodic.cell, periodic.pbc = np.eye(3) * 5, True
    ase.io.write(tmp_path / "p.xyz", [periodic], format="extxyz")
    assert main(["label", str(tmp_path / "p.xyz"), "-o", str(tmp_path / "y.xyz")]) == 2
    assert "field 'pbc' is periodic" in capsys.readouterr().err
    assert not (tmp_path / "x.xyz").exists() and not (tmp_path / "y.xyz").exists()


def test_store_takes_keys_that_read_as_numbers(tmp_path):
    # ase.db refuses string values such as "6539...e70"; a hexadecimal hash can be one
    store = LabelStore(tmp_path / "s.db")
    atoms = chain(2)
    key = "65399494664817964737483173606e70"
    store.put(key, atoms, {"energy": -1.0, "forces": np.zeros((2, 3)).tolist()})
    store.put("0123", atoms, {"error": "SCFError: no"})
    rows = LabelStore(tmp_path / "s.db").entries()
    assert rows[key]["status"] == "ok" and rows[key]["energy"] == -1.0
    assert rows["0123"] == {"status": "failed", "error": "SCFError: no"}


class SlowLJ(LennardJones):
    """A pair potential that takes 0.2 s per structure."""

    def calculate(self, *args, **kwargs):
        time.sleep(0.2)
        super().calculate(*args, **kwargs)


def test_stopping_early_cancels_the_tasks_not_started():
    tasks = [
        (str(k), [1, 1], [[0, 0, 0], [0, 0, 0.7 + 0.01 * k]], f"{__name__}:SlowLJ", {})
        for k in range(40)
    ]
    start = time.perf_counter()
    results = map_tasks(compute_label, tasks, workers=2, progress=False)
    with contextlib.closing(results):
        key, result = next(results)
    # all 40 would take 4 s on 2 workers; stopping waits for the 2 running ones
    assert time.perf_counter() - start < 2.5
    assert np.isfinite(result["energy"]) and key in {task[0] for task in tasks}
