import json

import ase.io
import metatensor.torch as mts
import numpy as np
import pytest
import yaml

from metatrain_mbe.interface.cli import main
from metatrain_mbe.interface.training import RunPaths, prepare_run, write_prepared

from .conftest import E1_H, train_options, write_yaml


def _parents_in(path):
    return {a.info.get("mbe_parent") for a in ase.io.read(path, ":")} - {None}


def test_prepared_sets_keep_held_out_parents_out_of_training(hydrogen_files):
    paths = RunPaths.from_output("out/model.pt", "extensions")
    prepared = prepare_run(train_options(isolated_atom_copies=3, subcluster_weight=2), paths)
    write_prepared(prepared, paths)
    data = hydrogen_files / "out" / "model_data"
    split = json.loads((data / "split.json").read_text())
    train = set(split["train_parents"])
    held_out = set(split["validation_parents"]) | set(split["test_parents"])
    assert not train & held_out and len(train | held_out) == 16
    assert _parents_in(data / "train.xyz") == train
    assert _parents_in(data / "train_subclusters.xyz") == set(split["injected_parents"]) <= train
    for name in ("validation", "test"):
        assert _parents_in(data / f"{name}_subclusters.xyz") <= set(split[f"{name}_parents"])
    # 10 labelled sets of 10 sub-clusters: half of the training ones, each written twice
    train_subs = ase.io.read(data / "train_subclusters.xyz", ":")
    assert len(train_subs) == 2 * split["injected_subclusters"]
    assert split["injected_subclusters"] == 10 * len(split["injected_parents"])
    assert abs(split["injected_fraction"] - 0.5) <= 10 / split["available_subclusters"]
    assert all(a.get_potential_energy() < 0 for a in train_subs)
    assert all(len(a) == 4 for a in ase.io.read(data / "train.xyz", ":"))
    isolated = ase.io.read(data / "train_isolated.xyz", ":")
    assert len(isolated) == 3 and {a.get_potential_energy() for a in isolated} == {E1_H}
    assert len(ase.io.read(data / "test_isolated.xyz", ":")) == 1

    derived = yaml.safe_load(paths.options.read_text())
    assert "mbe" not in derived
    assert derived["architecture"]["training"]["atomic_baseline"] == {"energy": {1: E1_H}}
    assert [s["systems"] for s in derived["training_set"]] == [
        "out/model_data/train.xyz",
        "out/model_data/train_subclusters.xyz",
        "out/model_data/train_isolated.xyz",
    ]
    assert derived["training_set"][0]["targets"] == {"energy": {"unit": "eV"}}
    assert len(derived["validation_set"]) == len(derived["test_set"]) == 3


def test_same_options_and_seed_give_byte_identical_data(hydrogen_files):
    outputs = []
    for name in ("a", "b"):
        paths = RunPaths.from_output(f"{name}/model.pt", "extensions")
        write_prepared(prepare_run(train_options(), paths), paths)
        outputs.append(
            {p.name: p.read_bytes() for p in (hydrogen_files / name / "model_data").iterdir()}
        )
    assert outputs[0] == outputs[1] and len(outputs[0]) == 10
    paths = RunPaths.from_output("c/model.pt", "extensions")
    write_prepared(prepare_run(train_options(seed=7), paths), paths)
    assert (hydrogen_files / "c/model_data/split.json").read_bytes() != outputs[0]["split.json"]


def test_zero_proportion_trains_on_parents_only(hydrogen_files):
    paths = RunPaths.from_output("out/model.pt", "extensions")
    prepared = prepare_run(train_options(proportion=0.0, fix_e1=False, e1_baseline=False), paths)
    assert set(prepared.files) == {"train.xyz", "validation.xyz", "test.xyz"}
    assert "atomic_baseline" not in prepared.options["architecture"]["training"]
    assert len(prepared.options["training_set"]) == 1


def _corrupt_parent(directory):
    subs = ase.io.read(directory / "subclusters.xyz", ":")
    subs[5].info["mbe_parent"] = 999
    ase.io.write(directory / "subclusters.xyz", subs, format="extxyz")


def _move_parent_copy(directory):
    subs = ase.io.read(directory / "subclusters.xyz", ":")
    subs[3].positions[0] += 0.1
    ase.io.write(directory / "subclusters.xyz", subs, format="extxyz")


def _move_subcluster(directory):
    subs = ase.io.read(directory / "subclusters.xyz", ":")
    subs[20].positions[1] += 0.1
    ase.io.write(directory / "subclusters.xyz", subs, format="extxyz")


def _drop_parent_key(directory):
    subs = ase.io.read(directory / "subclusters.xyz", ":")
    del subs[30].info["mbe_parent"]
    ase.io.write(directory / "subclusters.xyz", subs, format="extxyz")


def _drop_order_3(directory):
    subs = ase.io.read(directory / "subclusters.xyz", ":")
    ase.io.write(directory / "subclusters.xyz", [a for a in subs if len(a) != 3], format="extxyz")


@pytest.mark.parametrize(
    "change, edit, message",
    [
        ({"proportion": 1.5}, None, "mbe.proportion: Input should be less than or equal to 1"),
        ({"proportoin": 0.5}, None, "mbe.proportoin: unknown key"),
        ({}, _corrupt_parent, "field 'mbe_parent'=999 names no parent"),
        ({}, _drop_order_3, "0 of 4 sub-clusters of order 3 are labelled"),
        (
            {},
            _drop_parent_key,
            "subclusters.xyz:frame 30 (mbe_atoms=[1 2 3]): field 'mbe_parent' is missing",
        ),
        (
            {},
            _move_parent_copy,
            "subclusters.xyz:frame 3 (mbe_parent=102): field 'positions' "
            "differs from atoms [0, 1, 2, 3] of parent",
        ),
        (
            {},
            _move_subcluster,
            "subclusters.xyz:frame 20 (mbe_parent=100, mbe_atoms=[1 2 3]): "
            "field 'positions' differs from atoms [1, 2, 3]",
        ),
        (
            {"proportion": 0.01},
            None,
            "mbe.proportion: 0.01 of 6 labelled training parents selects no complete set",
        ),
        ({"analysis": {"parents": [7]}}, None, "mbe.analysis.parents: no parent with id 7"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(hydrogen_files, capsys, change, edit, message):
    if edit:
        edit(hydrogen_files)
    options = train_options()
    options["mbe"].update(change)
    path = write_yaml(hydrogen_files / "options.yaml", options)
    before = sorted(p.name for p in hydrogen_files.iterdir())
    assert main(["train", path, "-o", "out/m.pt"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert sorted(p.name for p in hydrogen_files.iterdir()) == before


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["soap_bpnn", "pet", "experimental.mace"])
def test_training_writes_a_model_and_its_mbe(hydrogen_files, architecture):
    options = train_options(architecture)
    path = write_yaml(hydrogen_files / "options.yaml", options)
    assert main(["train", path, "-o", "out/model.pt", "-r", "mbe.proportion=1.0"]) == 0
    out = hydrogen_files / "out"
    assert (out / "model.pt").is_file() and (out / "model.ckpt").is_file()
    split = json.loads((out / "model_data" / "split.json").read_text())
    assert split["injected_fraction"] == 1.0
    for kind in ("model", "reference"):
        energy = mts.load(str(out / "model_mbe" / kind / "mbe_energy.mts"))
        assert energy.keys.values.flatten().tolist() == [1, 2, 3, 4]
        systems = energy.block({"order": 4}).samples.column("system").tolist()
        assert sorted(systems) == split["analysed_parents"]
        assert (out / "model_mbe" / kind / "mbe_summary.mts").is_file()
    assert split["analysed_parents"] and set(split["analysed_parents"]) <= set(
        split["test_parents"]
    )
    assert np.isfinite(energy.block({"order": 2}).values.numpy()).all()
    # fix_e1: the trained model's isolated-atom energy is the reference E_1 (after one
    # epoch PET's own is far off: its composition baseline was shifted by the residual)
    from metatrain_mbe.compute.e1_calibration import isolated_atom_energies

    e1 = isolated_atom_energies(out / "model.pt", ["H"], hydrogen_files / "extensions")["H"]
    assert e1 == pytest.approx(E1_H, abs=1e-8)
    calibration = out / "model_data" / "e1_calibration.json"
    assert calibration.exists() == (architecture == "pet")
    if architecture == "pet":
        record = json.loads(calibration.read_text())["H"]
        assert record["shift"] == pytest.approx(E1_H - record["trained"], abs=1e-12)


@pytest.mark.parametrize(
    "architecture, setting",
    [
        ("soap_bpnn", ("bpnn", "layernorm", False)),
        ("experimental.mace", ("interaction_first", "RealAgnosticInteractionBlock")),
    ],
)
def test_fix_e1_removes_the_networks_own_one_body_term(hydrogen_files, architecture, setting):
    paths = RunPaths.from_output("out/model.pt", "extensions")
    derived = prepare_run(train_options(architecture), paths).options
    *keys, value = setting
    model = derived["architecture"]["model"]
    for key in keys:
        model = model[key]
    assert model == value
    assert "train_isolated.xyz" not in prepare_run(train_options(architecture), paths).files
    assert derived["architecture"]["training"]["atomic_baseline"] == {"energy": {1: E1_H}}


def test_fix_e1_teaches_pet_with_a_set_of_isolated_atoms(hydrogen_files):
    paths = RunPaths.from_output("out/model.pt", "extensions")
    prepared = prepare_run(train_options("pet"), paths)
    assert len(prepared.files["train_isolated.xyz"]) == 20 * 4  # 20 batches of 4
    assert len(prepared.options["training_set"]) == len(prepared.options["test_set"]) == 3
    unfixed = prepare_run(train_options("pet", fix_e1=False), paths)
    assert "train_isolated.xyz" not in unfixed.files


def test_fix_e1_overrides_a_one_body_setting_with_a_warning(hydrogen_files, caplog):
    options = train_options("soap_bpnn")
    options["architecture"]["model"]["bpnn"]["layernorm"] = True
    paths = RunPaths.from_output("out/model.pt", "extensions")
    derived = prepare_run(options, paths).options
    assert derived["architecture"]["model"]["bpnn"]["layernorm"] is False
    assert "bpnn.layernorm: True gives the network a one-body term" in caplog.text
    options["mbe"]["fix_e1"] = False
    assert prepare_run(options, paths).options["architecture"]["model"]["bpnn"]["layernorm"]


def test_fix_e1_without_e1_baseline_is_one_line_and_writes_nothing(hydrogen_files, capsys):
    path = write_yaml(hydrogen_files / "options.yaml", train_options("pet", e1_baseline=False))
    assert main(["train", path, "-o", "out/m.pt"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "mbe.fix_e1: needs mbe.e1_baseline" in error, error
    assert not (hydrogen_files / "out").exists()


@pytest.mark.slow
def test_a_run_killed_while_training_writes_no_model_and_the_next_run_completes(
    hydrogen_files,
):
    import os
    import signal
    import subprocess
    import sys
    import time

    options = train_options("pet")
    options["architecture"]["training"]["num_epochs"] = 1000
    write_yaml(hydrogen_files / "long.yaml", options)
    command = [sys.executable, "-m", "metatrain_mbe", "train", "long.yaml", "-o", "run/model.pt"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(1200):  # until metatrain's first epoch is logged
        logs = list(hydrogen_files.glob("outputs/*/*/train.log"))
        if logs and "Epoch:" in logs[0].read_text():
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (hydrogen_files / "run" / "model.pt").exists()
    options["architecture"]["training"]["num_epochs"] = 1
    write_yaml(hydrogen_files / "long.yaml", options)
    assert main(["train", "long.yaml", "-o", "run/model.pt"]) == 0
    assert (hydrogen_files / "run" / "model.pt").is_file()
    assert (hydrogen_files / "run" / "model_mbe" / "report.json").is_file()
    assert not [p.name for p in (hydrogen_files / "run").iterdir() if p.name.startswith(".")]


def test_a_cutoff_injects_the_screened_family_and_screens_the_analysis(hydrogen_files):
    from metatrain_mbe.cutoffs import Cutoffs
    from metatrain_mbe.data import parent_plan

    paths = RunPaths.from_output("out/model.pt", "extensions")
    prepared = prepare_run(train_options(cutoff="1.2", proportion=1.0), paths)
    cutoffs = Cutoffs.parse("1.2")
    assert prepared.settings.cutoffs == cutoffs
    parents = {a.info["mbe_parent"]: a for a in ase.io.read("parents.xyz", ":")}
    chosen = prepared.summary["injected_parents"]
    kept = [parent_plan(parents[p], 3, cutoffs=cutoffs) for p in chosen]
    assert prepared.summary["injected_subclusters"] == sum(p.kept(2) + p.kept(3) for p in kept)
    assert prepared.summary["injected_subclusters"] < 10 * len(chosen)
    assert prepared.summary["cutoffs"] == {2: 1.2}
