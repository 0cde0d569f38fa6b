"""`mtt-mbe eval`: metatrain's predictions plus the MBE report."""

import os
import subprocess
import sys
from pathlib import Path

import ase.io
import pytest

from metatrain_mbe.data import assign_parent_ids
from metatrain_mbe.interface.cli import main
from metatrain_mbe.interface.evaluation import evaluate_with_mbe

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


SHORT = "systems: test.xyz\ntargets:\n  energy:\n    key: energy\n"
READ_FROM = "systems:\n  read_from: test.xyz\ntargets:\n  energy:\n    read_from: test.xyz\n"


@pytest.mark.parametrize(
    "options, architecture",
    [(SHORT, "pet"), (READ_FROM, "pet"), (SHORT, "soap_bpnn"), (READ_FROM, "experimental.mace")],
    ids=["short-pet", "read_from-pet", "short-soap_bpnn", "read_from-mace"],
)
def test_eval_reads_relative_paths_from_the_working_directory(
    eval_files, tiny_models, monkeypatch, options, architecture
):
    """As ``mtt eval``: data files relative to the working directory, whatever
    the output folder, for each architecture (the metrics a user sees are checked
    in a fresh process, below)."""
    monkeypatch.chdir(eval_files)
    (eval_files / "eval.yaml").write_text(options + "mbe:\n  max_order: 2\n")
    model = str(tiny_models[architecture])
    code = main(["eval", model, "eval.yaml", "-o", "out/pred.xyz", "--no-warm-up"])
    assert code == 0
    assert len(ase.io.read(eval_files / "out" / "pred.xyz", ":")) == 2
    assert (eval_files / "out" / "mbe" / "report.json").is_file()


@pytest.mark.parametrize(
    "options, field",
    [
        (SHORT.replace("test.xyz", "missing.xyz"), "systems"),
        (
            READ_FROM.replace("read_from: test.xyz", "read_from: missing.xyz", 1),
            "systems.read_from",
        ),
        (READ_FROM[::-1].replace("zyx.tset", "zyx.gnissim", 1)[::-1], "targets.energy.read_from"),
    ],
    ids=["systems", "systems.read_from", "targets.read_from"],
)
def test_eval_refuses_a_missing_data_file_and_leaves_nothing(
    eval_files, tiny_models, monkeypatch, capsys, options, field
):
    monkeypatch.chdir(eval_files)
    (eval_files / "eval.yaml").write_text(options)
    code = main(["eval", str(tiny_models["pet"]), "eval.yaml", "-o", "out/pred.xyz"])
    assert code == 2
    error = capsys.readouterr().err
    assert f"missing.xyz: file not found (options field {field};" in error
    assert error.count("\n") == 1, error
    assert not (eval_files / "out").exists()


@pytest.mark.slow
def test_eval_of_a_soap_bpnn_prints_metrics_and_writes_the_report(eval_files, tiny_models):
    """In its own process, as a user runs it: sphericart's library loaded once
    (no abort after the predictions), metatrain's metrics printed."""
    out = eval_files / "soap" / "pred.xyz"
    command = [str(Path(sys.executable).parent / "mtt-mbe"), "eval", str(tiny_models["soap_bpnn"])]
    command += [str(eval_files / "options.yaml"), "-o", str(out), "--no-warm-up"]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "energy RMSE (per atom)" in result.stdout
    assert len(ase.io.read(out, ":")) == 2
    assert (eval_files / "mbe" / "report.json").is_file()


def test_evaluate_with_mbe_leaves_no_output_folder_when_metatrain_fails(
    eval_files, tiny_models, monkeypatch
):
    monkeypatch.chdir(eval_files)
    options = {"systems": "test.xyz", "targets": {"energy": {"key": "no_such_field"}}}
    with pytest.raises(ValueError, match="no_such_field"):
        evaluate_with_mbe(tiny_models["pet"], options, output="out/sub/pred.xyz")
    assert not (eval_files / "out").exists()
