"""Training compositions and extrapolation structures of `mtt-mbe study`: the
options' one-line errors, the composition's parents on the shared split (no
leakage), the RMSE per extrapolation group, and a tiny end-to-end study."""

import json

import ase.io
import numpy as np
import pytest
import yaml

from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from .conftest import lj_hydrogen_label, train_options, write_yaml

#: the paper's layout: both densities, each on its own
COMPOSITIONS = {"both": "all", "low": {"regime": "low"}, "high": {"regime": "high"}}
DENSITIES = (0.7, 0.9, 1.1)


def _extrapolation(path, densities=DENSITIES, per_density=2):
    """Labelled 4-atom parents at ``densities`` (info ``density``, ids 1000..)."""
    frames = []
    for k, density in enumerate(d for d in densities for _ in range(per_density)):
        atoms = hydrogen_cluster(4, seed=500 + k)
        atoms.info.update(mbe_parent=1000 + k, density=density, regime="intermediate")
        frames.append(atoms)
    ase.io.write(path, lj_hydrogen_label(frames), format="extxyz")
    return frames


def _study(directory, architectures=("pet",), **extra):
    files = {}
    for arch in architectures:
        options = train_options(arch)
        options["mbe"]["analysis"] = {"group_by": "regime"}
        write_yaml(directory / f"{arch}.yaml", options)
        files[arch] = f"{arch}.yaml"
    _extrapolation(directory / "intermediate.xyz")
    study = {
        "architectures": files,
        "compositions": COMPOSITIONS,
        "proportions": [0.0, 1.0],
        "seeds": [0],
        "validation_set": 0.2,
        "test_set": 0.2,
        "extrapolation": {
            "files": ["intermediate.xyz"],
            "group_by": "density",
            "training_values": {"low": 0.5, "high": 1.3},
        },
        **extra,
    }
    write_yaml(directory / "study.yaml", study)
    return "study.yaml"


def _bad_files(directory):
    """Extrapolation files that are refused: a sub-cluster, no energy, no
    density, and a parent id of the split."""
    parent = ase.io.read(directory / "intermediate.xyz", index=0)
    sub = parent[[0, 1]]
    sub.info.update(mbe_parent=1000, mbe_atoms=[0, 1], density=0.7)
    ase.io.write(directory / "sub.xyz", lj_hydrogen_label([sub]), format="extxyz")
    unlabelled = hydrogen_cluster(4, seed=900)
    unlabelled.info.update(mbe_parent=2000, density=0.7)
    ase.io.write(directory / "unlabelled.xyz", [unlabelled], format="extxyz")
    frames = _extrapolation(directory / "nodensity.xyz")
    frames[1].info.pop("density")
    ase.io.write(directory / "nodensity.xyz", frames, format="extxyz")
    frames = _extrapolation(directory / "split_id.xyz")
    frames[0].info["mbe_parent"] = 103
    ase.io.write(directory / "split_id.xyz", frames, format="extxyz")
    frames = _extrapolation(directory / "theory.xyz")
    for atoms in frames:
        atoms.info["mbe_theory"] = "pyscf;xc=pbe"
    ase.io.write(directory / "theory.xyz", frames, format="extxyz")


def test_bad_compositions_and_extrapolation_are_one_line_errors(hydrogen_files, capsys):
    study = yaml.safe_load(open(_study(hydrogen_files)))
    _bad_files(hydrogen_files)
    extrapolation = study["extrapolation"]

    def ext(**given):
        return {**study, "extrapolation": {**extrapolation, **given}}

    def comp(**given):
        return {**study, "compositions": given}

    cases = {
        "bad.yaml: extrapolation.files: nope.xyz: no such file": ext(files=["nope.xyz"]),
        # the file as the run reads it (absolute), then its frame
        "parents.xyz:frame 0 (mbe_parent=100): no info key 'phase'": comp(low={"phase": "low"}),
        "bad.yaml: compositions.mid: selects no training parent at dataset proportion 1 "
        "(regime=mid; the parents hold high, low)": comp(mid={"regime": "mid"}),
        "bad.yaml: compositions: Value error, low: 'lo' is neither `all` nor a mapping": comp(
            low="lo"
        ),
        "bad.yaml: compositions: Value error, 'a b': a name of letters": comp(**{"a b": "all"}),
        "bad.yaml: compositions: Value error, low: selects by no info key": comp(low={}),
        "bad.yaml: extrapolation.files: sub.xyz:frame 0 (mbe_parent=1000, mbe_atoms=[0 1]): "
        "a sub-cluster or an isolated atom, not a parent": ext(files=["sub.xyz"]),
        "bad.yaml: extrapolation.files: unlabelled.xyz:frame 0 (mbe_parent=2000): field "
        "'energy' is missing": ext(files=["unlabelled.xyz"]),
        "bad.yaml: extrapolation.group_by: nodensity.xyz:frame 1 (mbe_parent=1001): no info "
        "key 'density'": ext(files=["nodensity.xyz"]),
        "bad.yaml: extrapolation.files: split_id.xyz:frame 0 (mbe_parent=103): a parent of "
        "the study's split": ext(files=["split_id.xyz"]),
        "bad.yaml: extrapolation.files: theory.xyz:frame 0 (mbe_parent=1000): field "
        "'mbe_theory' pyscf;xc=pbe differs from the missing": ext(files=["theory.xyz"]),
        "bad.yaml: extrapolation.training_values: no value for regime=high": ext(
            training_values={"low": 0.5}
        ),
        "bad.yaml: extrapolation.traning_values: unknown key (known: files, group_by, "
        "training_values)": {**study, "extrapolation": {"traning_values": {}}},
    }
    for expected, content in cases.items():
        write_yaml(hydrogen_files / "bad.yaml", content)
        assert main(["study", "bad.yaml", "-o", "bad"]) == 2, expected
        error = capsys.readouterr().err.strip()
        assert error.startswith("mtt-mbe study: error: bad.yaml: "), error
        assert expected in error, error
        assert "\n" not in error
        assert not (hydrogen_files / "bad").exists(), expected


def test_every_data_set_that_cannot_inject_is_refused_when_planned(hydrogen_files, capsys):
    """A composition, or a dataset proportion, whose training parents have no
    labelled sub-clusters has none to inject at proportion 1: refused when the
    study is planned, not hours later when the run trains."""
    parents = ase.io.read(hydrogen_files / "parents.xyz", index=":")
    for atoms in parents:  # a third regime: only unlabelled parents (ids >= 110)
        if atoms.info["mbe_parent"] >= 110:
            atoms.info["regime"] = "odd"
    ase.io.write(hydrogen_files / "parents.xyz", parents, format="extxyz")
    study = yaml.safe_load(open(_study(hydrogen_files)))
    plain = {k: v for k, v in study.items() if k not in ("compositions", "extrapolation")}
    cases = {
        "bad.yaml: compositions.odd at dataset proportion 1: mbe.proportion: 1.0 requested "
        "but no training parent has labelled sub-clusters": {
            **study,
            "compositions": {"odd": {"regime": "odd"}},
        },
        "bad.yaml: dataset_proportions: 0.15: mbe.proportion: 1.0 requested but no training "
        "parent has labelled sub-clusters": {**plain, "dataset_proportions": [0.15, 1.0]},
    }
    for expected, content in cases.items():
        write_yaml(hydrogen_files / "bad.yaml", content)
        assert main(["study", "bad.yaml", "-o", "bad"]) == 2
        error = capsys.readouterr().err.strip()
        assert expected in error and "\n" not in error, error
        assert not (hydrogen_files / "bad").exists()


def _ids(path):
    return [int(a.info["mbe_parent"]) for a in ase.io.read(path, index=":") if len(a) > 1]


def test_compositions_restrict_training_never_the_test_parents(hydrogen_files):
    from metatrain_mbe.interface.study import load_study, plan_study
    from metatrain_mbe.interface.training import RunPaths, prepare_run

    study = load_study(_study(hydrogen_files, dataset_proportions=[0.5, 1.0]))
    runs = plan_study(study, "st")
    shared = json.loads((hydrogen_files / "st" / "split" / "split.json").read_text())
    regime = {
        int(a.info["mbe_parent"]): a.info["regime"]
        for a in ase.io.read(hydrogen_files / "parents.xyz", index=":")
    }
    assert len(runs) == 3 * 2 * 2 and len({r.name for r in runs}) == len(runs)
    assert {r.name.split("/")[1] for r in runs} == set(COMPOSITIONS)
    trained = {}
    for run in runs:
        prepared = prepare_run(run.options, RunPaths.from_output("m/model.pt", "ext"))
        split = prepared.split
        wanted = COMPOSITIONS[run.composition]
        assert split["test"] == shared["test"]  # every run tests on the shared test parents
        assert set(split["train"]) <= set(shared[f"train-d{run.dataset_proportion:g}"])
        assert set(split["validation"]) <= set(shared["validation"])
        for pid in split["train"] + split["validation"]:
            assert wanted == "all" or regime[pid] == wanted["regime"]
        # no test parent, nor any of its sub-clusters, reaches the training sets
        assert not set(split["train"]) & set(shared["test"])
        assert set(prepared.summary["injected_parents"]) <= set(split["train"])
        for name, frames in prepared.files.items():
            if name.startswith("train"):
                assert not {a.info.get("mbe_parent") for a in frames} & set(shared["test"])
        own = set(split["train"]) | set(split["validation"]) | set(split["test"])
        for path in run.options["mbe"]["subclusters"]:  # a run names only its own parents
            assert set(_ids(path)) <= own
        if run.proportion == 1.0:
            assert prepared.summary["injected_parents"]
        trained[run.composition, run.dataset_proportion] = set(split["train"])
    for d in (0.5, 1.0):  # the compositions partition the training parents of each proportion
        assert trained["low", d] | trained["high", d] == trained["both", d]
        assert not trained["low", d] & trained["high", d]
    assert trained["low", 0.5] < trained["low", 1.0]
    values = {r.composition: r.training_values for r in runs}
    assert values == {"both": [0.5, 1.3], "low": [0.5], "high": [1.3]}


def test_the_figures_grid_trains_only_what_the_findings_use(hydrogen_files):
    from metatrain_mbe.interface.study import load_study, plan_study

    path = _study(hydrogen_files, dataset_proportions=[0.5, 1.0], grid="figures")
    runs = plan_study(load_study(path), "grid")
    planned = {(r.composition, r.dataset_proportion, r.proportion) for r in runs}
    # every composition and proportion at the largest dataset proportion (Fig. 3, 4, 6),
    # the main composition without sub-clusters at the smaller one (Fig. 5)
    full = {(c, 1.0, p) for c in COMPOSITIONS for p in (0.0, 1.0)}
    assert planned == full | {("both", 0.5, 0.0)}
    assert len(runs) == len(planned)  # one seed
    everything = plan_study(load_study(_study(hydrogen_files, dataset_proportions=[0.5, 1.0])), "g")
    assert {r.name for r in runs} < {r.name for r in everything}  # the same run names


def test_runs_of_a_study_without_compositions_keep_their_names_and_digests(hydrogen_files):
    from metatrain_mbe.interface.study import RunSpec, load_study, plan_study

    text = yaml.safe_load(open(_study(hydrogen_files)))
    for key in ("compositions", "extrapolation"):
        text.pop(key)
    write_yaml(hydrogen_files / "plain.yaml", text)
    runs = plan_study(load_study("plain.yaml"), "plain")
    assert [r.name for r in runs] == ["pet/p0-d1-s0", "pet/p1-d1-s0"]
    run = runs[0]
    # the digest of earlier versions: options, evaluation files and inputs only
    old = RunSpec(
        run.name,
        run.architecture,
        run.proportion,
        run.dataset_proportion,
        run.seed,
        run.options,
        run.directory,
        run.evaluation,
        run.inputs,
    )
    assert run.digest == old.digest
    renamed = RunSpec(**{**run.__dict__, "composition": "both", "digest": ""})
    assert renamed.digest != run.digest


def test_grouped_rmse_equals_a_computation_structure_by_structure(tiny_models, tmp_path):
    from metatomic_ase import MetatomicCalculator

    from metatrain_mbe.analysis.study import grouped_rmse
    from metatrain_mbe.compute.evaluator import load_model

    frames = _extrapolation(tmp_path / "a.xyz", densities=(0.7, 1.1), per_density=2)
    _extrapolation(tmp_path / "b.xyz", densities=(0.9,), per_density=3)
    model = tiny_models["pet"]
    extensions = model.parent / "extensions"
    rmse = grouped_rmse(model, extensions, [tmp_path / "a.xyz", tmp_path / "b.xyz"], "density")
    assert list(rmse) == ["0.7", "0.9", "1.1"]
    calculator = MetatomicCalculator(load_model(model, extensions), check_consistency=False)
    frames = ase.io.read(tmp_path / "a.xyz", index=":") + ase.io.read(tmp_path / "b.xyz", index=":")
    for density in DENSITIES:
        energy, forces = [], []
        for atoms in (a for a in frames if a.info["density"] == density):
            reference_e, reference_f = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = calculator
            energy.append((atoms.get_potential_energy() - reference_e) / len(atoms))
            forces.append(atoms.get_forces() - reference_f)
        group = rmse[f"{density:g}"]
        assert group["n_structures"] == len(energy)
        assert group["energy_per_atom"] == pytest.approx(np.sqrt(np.mean(np.square(energy))))
        assert group["forces"] == pytest.approx(np.sqrt(np.mean(np.square(forces))))
        assert group["energy_per_atom"] > 0 and group["forces"] > 0
    everything = grouped_rmse(model, extensions, [tmp_path / "b.xyz"], None)
    assert list(everything) == ["all"] and everything["all"]["n_structures"] == 3


@pytest.mark.slow
def test_study_with_compositions_measures_each_extrapolation_group(hydrogen_files):
    """Three runs of the `figures` grid (about 20 s each on one CPU core): both
    regimes at dataset proportions 0.5 and 1, the low one at 1."""
    compositions = {"both": "all", "low": {"regime": "low"}}
    study = _study(
        hydrogen_files,
        compositions=compositions,
        proportions=[0.0],
        dataset_proportions=[0.5, 1.0],
        grid="figures",
    )
    assert main(["study", study, "-o", "st"]) == 0
    result = json.loads((hydrogen_files / "st" / "study.json").read_text())
    runs = {r["name"]: r for r in result["runs"]}
    assert list(runs) == ["pet/both/p0-d0.5-s0", "pet/both/p0-d1-s0", "pet/low/p0-d1-s0"]
    for record in runs.values():
        assert "error" not in record
        assert list(record["extrapolation"]) == ["0.7", "0.9", "1.1"]
        for group in record["extrapolation"].values():
            assert group["n_structures"] == 2 and group["energy_per_atom"] > 0
    both, low = runs["pet/both/p0-d1-s0"], runs["pet/low/p0-d1-s0"]
    assert both["test_parents"] == low["test_parents"]
    assert low["n_train_parents"] < both["n_train_parents"]
    assert runs["pet/both/p0-d0.5-s0"]["n_train_parents"] < both["n_train_parents"]
    assert [p["composition"] for p in result["points"]] == ["both", "both", "low"]
    energy = result["points"][2]["extrapolation"]["0.9"]["energy_per_atom"]
    assert energy["n"] == 1 and energy["mean"] == low["extrapolation"]["0.9"]["energy_per_atom"]
    assert result["compositions"]["low"]["training_values"] == [0.5]
    assert len(result["findings_extrapolation"]) == 5 and len(result["findings_by_dataset"]) == 6
    assert result["findings_extrapolation"][0]["holds"] is not None  # judged: 3 groups, placed
    for name in ("extrapolation.png", "body_orders_by_dataset.png"):
        assert (hydrogen_files / "st" / "figures" / name).exists()
    report = (hydrogen_files / "st" / "report.md").read_text()
    assert "## Accuracy out of distribution" in report and "| pet (low) | 0 | 1 |" in report
    assert "### out of distribution (Fig. 6)" in report

    # resumable: a second invocation trains nothing
    stamps = {p: p.stat().st_mtime_ns for p in (hydrogen_files / "st").glob("runs/*/*/*/run.json")}
    assert len(stamps) == 3
    assert main(["study", study, "-o", "st"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
