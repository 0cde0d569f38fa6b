import json
import re

import pytest
import yaml

from metatrain_mbe.interface.cli import main

from .conftest import train_options, write_yaml


def _study(tmp_path, architectures=("pet", "soap_bpnn"), **extra):
    files = {}
    for arch in architectures:
        options = train_options(arch)
        options["mbe"]["analysis"] = {"group_by": "regime"}
        write_yaml(tmp_path / f"{arch}.yaml", options)
        files[arch] = f"{arch}.yaml"  # relative to the working directory, tmp_path
    study = {
        "architectures": files,
        "proportions": [0.0, 1.0],
        "seeds": [0, 1],
        "validation_set": 0.2,
        "test_set": 0.2,
        **extra,
    }
    write_yaml(tmp_path / "study.yaml", study)
    return "study.yaml"


@pytest.mark.slow
def test_study_shares_test_parents_and_is_resumable(hydrogen_files, capsys):
    study = _study(hydrogen_files)
    assert main(["study", study, "-o", "st", "--jobs", "2"]) == 0
    result = json.loads((hydrogen_files / "st" / "study.json").read_text())
    runs = result["runs"]
    assert len(runs) == 8 and not [r for r in runs if "error" in r]
    assert len({tuple(r["test_parents"]) for r in runs}) == 1
    assert {r["injected_subclusters"] > 0 for r in runs} == {True, False}
    for record in runs:  # no test parent's sub-cluster reached a training set
        split = json.loads(
            (
                hydrogen_files / "st" / "runs" / record["name"] / "model_data" / "split.json"
            ).read_text()
        )
        assert not set(split["injected_parents"]) & set(record["test_parents"])
        assert (
            record["rmse"]["energy_per_atom"] >= 0
            and "V_tilde" in (record["groups"]["all"]["model"])
        )
    assert len(result["points"]) == 4 and result["points"][0]["n_seeds"] == 2
    for record in runs:  # fix_e1: every model's E_1 is the reference; PET's was calibrated
        e1 = record["e1"]
        assert e1["model"]["H"] == pytest.approx(e1["reference"]["H"], abs=1e-8)
        assert ("trained" in e1) == (record["architecture"] == "pet")
    report = (hydrogen_files / "st" / "report.md").read_text()
    assert "The paper's findings" in report and "E_1" in report
    assert re.search(r"\| pet \| 0 \| 1 \| H: \+0\.0 ± 0\.0 \| [+-]\d+\.\d ± \d+\.\d \|", report)
    assert "| soap_bpnn | 0 | 1 | H: +0.0 ± 0.0 | not calibrated |" in report
    assert (hydrogen_files / "st" / "figures" / "rmse_by_proportion.png").exists()

    # a second invocation trains nothing: every run.json is reused as it is
    stamps = {p: p.stat().st_mtime_ns for p in (hydrogen_files / "st").glob("runs/*/*/run.json")}
    assert main(["study", study, "-o", "st"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}

    # a run killed before it finished (no run.json) is trained again, alone
    killed = next(iter(stamps))
    killed.unlink()
    assert main(["study", study, "-o", "st"]) == 0
    assert killed.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p != killed)


@pytest.mark.slow
def test_study_runs_on_a_dask_cluster(hydrogen_files):
    from dask.distributed import LocalCluster

    study = _study(hydrogen_files, architectures=("pet",), proportions=[0.5], seeds=[0])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster:
        assert main(["study", study, "-o", "st", "--scheduler", cluster.scheduler_address]) == 0
    runs = json.loads((hydrogen_files / "st" / "study.json").read_text())["runs"]
    assert [r["name"] for r in runs] == ["pet/p0.5-d1-s0"] and "error" not in runs[0]


def test_study_errors_are_one_line_and_write_nothing(hydrogen_files, capsys):
    study = yaml.safe_load(open(_study(hydrogen_files)))
    write_yaml(hydrogen_files / "other.yaml", {**train_options("pet"), "training_set": "x.xyz"})
    typo = train_options("pet")
    typo["mbe"]["proportoin"] = 0.5
    cases = {
        "bad.yaml: propotions: unknown key": {**study, "propotions": [0.5]},
        "bad.yaml: proportions": {**study, "proportions": [1.5]},
        "training_set / mbe.subclusters: pet.yaml reads other data than other.yaml": {
            **study,
            "architectures": {**study["architectures"], "other": "other.yaml"},
        },
        "typo.yaml: mbe.proportoin: unknown key": {**study, "architectures": {"typo": "typo.yaml"}},
    }
    write_yaml(hydrogen_files / "typo.yaml", typo)
    for expected, content in cases.items():
        write_yaml(hydrogen_files / "bad.yaml", content)
        assert main(["study", "bad.yaml", "-o", "bad"]) == 2, expected
        error = capsys.readouterr().err.strip()
        assert error.startswith("mtt-mbe study: error: ") and expected in error, error
        assert "\n" not in error
        assert not (hydrogen_files / "bad").exists(), expected
    assert main(["study", _study(hydrogen_files), "-o", "bad", "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_dataset_proportions_keep_nested_parents_and_their_own_subclusters(hydrogen_files):
    from metatrain_mbe.interface.study import load_study, plan_study
    from metatrain_mbe.interface.training import RunPaths, prepare_run

    study = load_study(
        _study(hydrogen_files, architectures=("pet",), dataset_proportions=[0.5, 1.0], seeds=[0])
    )
    runs = plan_study(study, "st")
    kept = {}
    for run in runs:
        prepared = prepare_run(run.options, RunPaths.from_output("m/model.pt", "ext"))
        kept[run.dataset_proportion] = set(prepared.split["train"])
        assert set(prepared.summary["injected_parents"]) <= kept[run.dataset_proportion]
        assert len({tuple(prepared.split["test"])}) == 1
    assert kept[0.5] < kept[1.0] and len(kept[0.5]) == pytest.approx(len(kept[1.0]) / 2, abs=2)
