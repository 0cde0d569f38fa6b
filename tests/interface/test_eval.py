"""`mtt-mbe eval`: metatrain's predictions plus the MBE report."""

import ase.io
import pytest

from metatrain_mbe.data import assign_parent_ids
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster, lj_label


@pytest.fixture
def eval_files(tmp_path):
    parents = lj_label([hydrogen_cluster(3, seed=s) for s in range(2)])
    assign_parent_ids(parents)
    ase.io.write(tmp_path / "test.xyz", parents, format="extxyz")
    (tmp_path / "options.yaml").write_text(
        f"systems: {tmp_path / 'test.xyz'}\n"
        "targets:\n  energy:\n    key: energy\n"
        f"mbe:\n  max_order: 2\n  output: {tmp_path / 'mbe'}\n"
    )
    return tmp_path


def test_eval_writes_predictions_and_report(eval_files, tiny_models):
    out = eval_files / "pred.xyz"
    code = main(
        [
            "eval",
            str(tiny_models["pet"]),
            str(eval_files / "options.yaml"),
            "-o",
            str(out),
            "--no-warm-up",
            "--parents",
            "1",
        ]
    )
    assert code == 0
    assert len(ase.io.read(out, ":")) == 2
    report = (eval_files / "mbe" / "report.md").read_text()
    assert "max order: 2" in report
    assert (eval_files / "mbe" / "model" / "mbe_summary.mts").is_file()


@pytest.mark.parametrize(
    "line, message",
    [
        ("typo: 1", "mbe.typo: unknown key (known: parents, max_order"),
        ("max_atoms: many", "mbe.max_atoms: Input should be a valid integer"),
        ("max_order: 3", "not a readable options file (while constructing a mapping"),
    ],
)
def test_eval_rejects_bad_mbe_options(eval_files, tiny_models, capsys, line, message):
    options = eval_files / "options.yaml"
    options.write_text(options.read_text() + f"  {line}\n")
    assert (
        main(["eval", str(tiny_models["pet"]), str(options), "-o", str(eval_files / "pred.xyz")])
        == 2
    )
    error = capsys.readouterr().err
    assert f"{options}: {message}" in error and error.count("\n") == 1, error
    assert not (eval_files / "pred.xyz").exists() and not (eval_files / "mbe").exists()
