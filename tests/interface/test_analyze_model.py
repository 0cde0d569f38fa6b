"""analyze_model and `mtt-mbe analyze --model` on a tiny PET model."""

import gzip
import json

import ase.io
import metatensor.torch as mts
import pytest
import torch
from metatomic_ase import MetatomicCalculator

from metatrain_mbe import MBEInputError
from metatrain_mbe.analysis import AnalysisSettings
from metatrain_mbe.compute.evaluator import BATCH_LAYOUTS, CPU_SUBCLUSTER_BATCH_SIZE
from metatrain_mbe.data import assign_parent_ids, enumerate_subclusters, isolated_atoms
from metatrain_mbe.interface.cli import main
from metatrain_mbe.interface.model_analysis import analyze_model

from ..conftest import hydrogen_cluster, lj_label


@pytest.fixture
def labelled_hydrogen():
    """Two 4-atom hydrogen parents (regimes a, b), LJ-labelled with every
    sub-cluster and the isolated atom."""
    parents = [hydrogen_cluster(4, seed=s) for s in (1, 2)]
    for parent, regime in zip(parents, "ab"):
        parent.info["regime"] = regime
    assign_parent_ids(parents)
    return lj_label(isolated_atoms(parents) + parents + enumerate_subclusters(parents))


def test_analyze_model_writes_model_and_reference(tmp_path, tiny_models, labelled_hydrogen):
    out = tmp_path / "out"
    settings = AnalysisSettings(group_by="regime")
    report = analyze_model(
        tiny_models["pet"],
        labelled_hydrogen,
        out,
        settings,
        training_frames=[hydrogen_cluster(4, seed=9)],
    )
    for name in [
        "model/mbe_energy.mts",
        "model/mbe_summary.mts",
        "reference/mbe_energy.mts",
        "report.json",
        "report.md",
        "figures/body_orders.png",
        "figures/dimers.png",
        "parents.chemiscope.json.gz",
    ]:
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text())["model"] == report["model"]
    assert set(report["model"]["groups"]) == {"all", "a", "b"}
    with gzip.open(out / "parents.chemiscope.json.gz", "rt") as stream:
        view = json.load(stream)
    assert len(view["structures"]) == 2  # one per parent
    assert any("doi:10.1063/5.0303302" in reference for reference in view["meta"]["references"])
    # full-order analysis reproduces the model's own energy of each parent
    energy = mts.load(str(out / "model" / "mbe_energy.mts"))
    calc = MetatomicCalculator(str(tiny_models["pet"]))
    for pid in (0, 1):
        parent = labelled_hydrogen[1 + pid].copy()
        parent.calc = calc
        total = sum(b.values[b.samples.column("system") == pid].sum() for b in energy.blocks())
        assert float(total) == pytest.approx(parent.get_potential_energy(), abs=1e-8)
    # model E_1 is the model's isolated atom; rmse of order 1 is |E1_model - E1_ref|
    e1_model = report["baselines"]["e1"]["model"]["H"]
    assert report["rmse"]["1"]["energy_per_atom"] == pytest.approx(abs(e1_model + 13.0))
    # dimers: reference V2 is the LJ pair energy (sigma 1, epsilon 0.01)
    dimer = report["dimers"]["H-H"]
    r = torch.tensor(dimer["r"], dtype=torch.float64)
    lj = 4 * 0.01 * ((1 / r) ** 12 - (1 / r) ** 6)
    reference = torch.tensor(dimer["reference"], dtype=torch.float64)
    torch.testing.assert_close(reference, lj, atol=1e-9, rtol=0)
    assert len(dimer["grid"]["r"]) == len(dimer["grid"]["model"]) > 10
    assert set(report["soap_distance"]["orders"]) == {"1", "2", "3", "4"}
    assert "warning" not in report["precision"]
    assert "| 2 |" in (out / "report.md").read_text()


def test_parents_only_and_selection(tmp_path, tiny_models):
    frames = [hydrogen_cluster(3, seed=s) for s in range(3)]
    report = analyze_model(
        tiny_models["pet"], frames, tmp_path / "o", AnalysisSettings(), parent_ids=[2], device="cpu"
    )
    assert report["model"]["parents"] == [2]  # frame index as id
    # 7 sub-clusters: one call, in the first layout, of at most CPU_SUBCLUSTER_BATCH_SIZE on a CPU
    assert report["model_info"]["strategy"] == BATCH_LAYOUTS[0]
    assert report["model_info"]["batch_size"] == CPU_SUBCLUSTER_BATCH_SIZE
    assert "reference" not in report and "rmse" not in report
    assert not (tmp_path / "o" / "reference").exists()


def test_unknown_parent_writes_nothing(tmp_path, tiny_models):
    frames = [hydrogen_cluster(3)]
    with pytest.raises(MBEInputError, match="no parent \\[5\\]"):
        analyze_model(
            tiny_models["pet"], frames, tmp_path / "o", AnalysisSettings(), parent_ids=[5]
        )
    assert not (tmp_path / "o").exists()


def test_cli_analyze_with_model(tmp_path, tiny_models, labelled_hydrogen, capsys):
    path = tmp_path / "labelled.xyz"
    ase.io.write(path, labelled_hydrogen, format="extxyz")
    out = tmp_path / "cli"
    assert (
        main(
            [
                "analyze",
                str(path),
                "--model",
                str(tiny_models["pet"]),
                "-o",
                str(out),
                "--max-order",
                "3",
                "--parents",
                "1",
            ]
        )
        == 0
    )
    summary = mts.load(str(out / "model" / "mbe_summary.mts"))
    assert summary.keys.values.flatten().tolist() == [2, 3]
    assert "== model ==" in capsys.readouterr().out
    assert (
        main(
            [
                "analyze",
                str(path),
                "--model",
                str(tmp_path / "missing.pt"),
                "-o",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad").exists()
