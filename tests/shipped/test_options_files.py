"""The ready options of options/ on the shipped data: what `mtt-mbe train`
prepares from them, and one short real training run."""

import json
from pathlib import Path

import metatensor.torch as mts
import pytest

from metatrain_mbe.interface.options import load_options
from metatrain_mbe.interface.training import RunPaths, prepare_run, train

ROOT = Path(__file__).parents[2]
#: the ready `mtt-mbe train` options (the study files are tested below)
OPTIONS = sorted(p for p in (ROOT / "options").glob("*.yaml") if not p.stem.startswith("study"))
#: those on the shipped hydrogen data (the water options are tested on their own)
HYDROGEN = [p for p in OPTIONS if not p.stem.startswith("water")]
STUDIES = sorted((ROOT / "options").glob("study*.yaml"))


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the options name the data relative to the repository


@pytest.mark.slow  # reads the 1 000 parents and every labelled set
@pytest.mark.parametrize("path", HYDROGEN, ids=lambda p: p.stem)
def test_ready_options_prepare_the_shipped_data(in_root, tmp_path, path):
    options = load_options(str(path))
    prepared = prepare_run(options, RunPaths.from_output(tmp_path / "model.pt", "extensions"))
    summary, split = prepared.summary, prepared.split
    assert not set(split["train"]) & (set(split["validation"]) | set(split["test"]))
    assert len(split["train"]) + len(split["validation"]) + len(split["test"]) == 1000
    # proportion 0.5 of the labelled training parents' sets, whole sets of 246
    assert summary["injected_subclusters"] == 246 * len(summary["injected_parents"])
    assert (
        abs(summary["injected_fraction"] - options["mbe"]["proportion"])
        <= 246 / summary["available_subclusters"]
    )
    assert summary["analysed_parents"] and set(summary["analysed_parents"]) <= set(split["test"])
    baseline = prepared.options["architecture"]["training"]["atomic_baseline"]["energy"]
    assert baseline == {1: pytest.approx(-12.436759, abs=1e-6)}
    # fix_e1: a model setting (SOAP-BPNN, MACE) or a set of isolated atoms (PET)
    assert ("train_isolated.xyz" in prepared.files) == (path.stem == "pet")


def test_ready_water_options_inject_whole_molecular_sets(in_root, tmp_path):
    options = load_options(str(ROOT / "options" / "water-pet.yaml"))
    prepared = prepare_run(options, RunPaths.from_output(tmp_path / "model.pt", "extensions"))
    summary, split = prepared.summary, prepared.split
    assert not set(split["train"]) & (set(split["validation"]) | set(split["test"]))
    # a set of (H2O)_n holds every union of 1 .. n-1 waters: 2^n - 2 sub-clusters
    injected = prepared.files["train_subclusters.xyz"]
    sizes = {int(a.info["mbe_parent"]): 2 ** int(a.info["n_water"]) - 2 for a in injected}
    assert summary["injected_subclusters"] == len(injected) == sum(sizes.values())
    assert set(sizes) == set(summary["injected_parents"]) <= set(split["train"])
    assert {a.info["mbe_order"] for a in injected} == {1, 2, 3, 4, 5}
    assert summary["analysed_parents"] and set(summary["analysed_parents"]) <= set(split["test"])
    # no isolated atoms: the one-body terms are the labelled waters
    assert "atomic_baseline" not in prepared.options["architecture"]["training"]
    assert "train_isolated.xyz" not in prepared.files


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_ready_study_files_name_ready_options(in_root, path):
    from metatrain_mbe.interface.study import load_study

    study = load_study(str(path))
    assert study.proportions[0] == 0.0
    if path.stem == "study-docs-steps":  # the control of study-docs: its split, no sub-clusters
        docs = load_study(str(path.with_name("study-docs.yaml")))
        assert study.proportions == [0.0]
        for key in (
            "dataset_proportions",
            "seeds",
            "validation_set",
            "test_set",
            "split_seed",
            "stratify_by",
        ):
            assert getattr(study, key) == getattr(docs, key), key
    else:
        assert max(study.proportions) > 0
    assert {Path(p) for p in study.architectures.values()} <= {p.relative_to(ROOT) for p in OPTIONS}


@pytest.mark.slow
def test_ready_pet_options_train_and_analyse(in_root, tmp_path):
    options = load_options(
        str(ROOT / "options" / "pet.yaml"), ["architecture.training.num_epochs=1"]
    )
    paths = RunPaths.from_output(tmp_path / "pet" / "model.pt", tmp_path / "extensions")
    report = train(options, paths, checkpoint_dir=tmp_path / "checkpoints")
    assert paths.model.is_file()
    split = json.loads((paths.data / "split.json").read_text())
    for kind in ("model", "reference"):
        energy = mts.load(str(paths.report / kind / "mbe_energy.mts"))
        systems = energy.block({"order": 8}).samples.column("system").tolist()
        assert sorted(systems) == split["analysed_parents"]
    assert (paths.report / "report.md").is_file() and report is not None
