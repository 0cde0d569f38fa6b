import json
import shutil
import subprocess

import ase.io
import metatensor.torch as mts
import numpy as np
import pytest
import torch

from metatrain_mbe.interface.cli import main


@pytest.fixture
def labelled_file(tmp_path, lj_dataset):
    path = tmp_path / "labelled.xyz"
    ase.io.write(path, lj_dataset, format="extxyz")
    return path


def test_analyze_writes_the_design_layout(tmp_path, labelled_file, lj_dataset):
    out = tmp_path / "out"
    assert main(["analyze", str(labelled_file), "-o", str(out), "--group-by", "regime"]) == 0
    energy = mts.load(str(out / "reference" / "mbe_energy.mts"))
    summary = mts.load(str(out / "reference" / "mbe_summary.mts"))
    assert energy.keys.names == ["order"]
    assert energy.keys.values.flatten().tolist() == [1, 2, 3, 4, 5, 6]
    block = energy.block({"order": 2})
    assert block.samples.names == ["system", *(f"body_{j}" for j in range(1, 7))]
    bodies = block.samples.values[:, 1:]
    assert (bodies[:, 2:] == -1).all() and (bodies[:, 0] < bodies[:, 1]).all()
    assert len(block.samples) == 3 * 15
    assert block.values.dtype == torch.float64
    gradient = block.gradient("positions")
    assert gradient.samples.names == ["sample", "system", "atom"]
    assert gradient.values.shape == (3 * 15 * 2, 3, 1)
    # sum of every V(S) of parent 1 is its energy; V beyond pairs vanish (LJ)
    parent = next(
        a
        for a in lj_dataset
        if a.info.get("mbe_parent") == 1 and len(a) == 6 and "mbe_atoms" not in a.info
    )
    total = sum(b.values[b.samples.column("system") == 1].sum() for b in energy.blocks())
    assert total.item() == pytest.approx(parent.get_potential_energy(), abs=1e-9)
    assert energy.block({"order": 4}).values.abs().max() < 1e-10
    assert summary.keys.values.flatten().tolist() == [2, 3, 4, 5, 6]
    assert summary.block({"order": 3}).properties.names == ["quantity"]
    # extxyz keeps forces to 1e-8 eV/Å, energies to full precision
    assert summary.block({"order": 3}).values[:, 0].abs().max() < 1e-10
    assert summary.block({"order": 3}).values[:, 1].abs().max() < 1e-7
    report = json.loads((out / "report.json").read_text())
    groups = report["reference"]["groups"]
    assert set(groups) == {"all", "low", "high"}
    assert groups["low"]["n_parents"] == 2
    v2 = summary.block({"order": 2}).values[:, 0]
    assert groups["all"]["orders"]["2"]["V_tilde"]["mean"] == pytest.approx(v2.mean().item())
    assert groups["all"]["orders"]["2"]["dV_tilde"]["mean"] > 0


def _drop(frames, atoms):
    return [f for f in frames if list(f.info.get("mbe_atoms", [])) != atoms]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda f: _drop(f, [1, 2, 3]), "missing atom sets [1, 2, 3]"),
        (lambda f: [a for a in f if len(a) > 1], "no isolated-atom energy E_1 for Ar"),
        (lambda f: [f[0], *f[1:3], _periodic(f[3]), *f[4:]], "field 'pbc' is periodic"),
        (lambda f: [*f[:5], _nan_energy(f[5]), *f[6:]], "field 'energy' is nan"),
        (lambda f: [*f[:9], _other_species(f[9]), *f[10:]], "field 'numbers'"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_writes_nothing(
    tmp_path, lj_dataset, capsys, edit, message
):
    path = tmp_path / "bad.xyz"
    ase.io.write(path, edit(lj_dataset), format="extxyz")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "bad.xyz:frame" in error
    assert list(tmp_path.iterdir()) == [path]


def test_cluster_above_the_limit_suggests_max_order(tmp_path, labelled_file, capsys):
    assert main(["analyze", str(labelled_file), "-o", str(tmp_path / "o"), "--max-atoms", "5"]) == 2
    assert "--max-order" in capsys.readouterr().err
    assert (
        main(
            [
                "analyze",
                str(labelled_file),
                "-o",
                str(tmp_path / "o"),
                "--max-atoms",
                "5",
                "--max-order",
                "3",
            ]
        )
        == 0
    )


def test_console_script_exit_code(tmp_path, labelled_file):
    script = shutil.which("mtt-mbe")
    if script is None:
        pytest.skip("mtt-mbe is not installed on PATH")
    done = subprocess.run(
        [script, "analyze", str(tmp_path / "nope.xyz"), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"mtt-mbe analyze: error: argument labelled: {tmp_path / 'nope.xyz'}: no such file\n"
    )


def test_subclusters_command_makes_an_analysable_file(tmp_path, lj_dataset):
    parents = [a for a in lj_dataset if len(a) == 6 and "mbe_atoms" not in a.info]
    ase.io.write(tmp_path / "parents.xyz", parents, format="extxyz")
    out = tmp_path / "subs.xyz"
    assert (
        main(
            [
                "subclusters",
                str(tmp_path / "parents.xyz"),
                "-o",
                str(out),
                "--orders",
                "2:5",
                "--with-parents",
            ]
        )
        == 0
    )
    frames = ase.io.read(out, ":")
    assert len(frames) == 1 + 3 + 3 * (15 + 20 + 15 + 6)
    assert all(f.calc is None for f in frames)
    assert sorted({int(f.info["mbe_parent"]) for f in frames if "mbe_parent" in f.info}) == [
        0,
        1,
        2,
    ]


def _periodic(atoms):
    atoms = atoms.copy()
    atoms.cell = np.eye(3) * 20
    atoms.pbc = True
    atoms.calc = None
    return atoms


def _nan_energy(atoms):
    atoms = atoms.copy()
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms.calc = SinglePointCalculator(atoms, energy=float("nan"), forces=np.zeros((len(atoms), 3)))
    return atoms


def _other_species(atoms):
    atoms = atoms.copy()
    atoms.calc = None
    atoms.numbers = [1] * len(atoms)
    return atoms


def test_parents_restrict_the_reference_analysis(tmp_path, labelled_file, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(labelled_file), "-o", str(out), "--parents", "0", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert sorted(entry["parent"] for entry in report["per_parent"]) == [0, 2]
    assert report["reference"]["groups"]["all"]["n_parents"] == 2
    assert main(["analyze", str(labelled_file), "-o", str(tmp_path / "bad"), "--parents", "7"]) == 2
    assert "has no parent [7]" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
