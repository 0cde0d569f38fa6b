"""analyze_reference (``mtt-mbe analyze`` without a model) and the report's
flags, units and definitions."""

import json

import ase.io
import pytest
import torch

from metatrain_mbe import MBEInputError
from metatrain_mbe.analysis import AnalysisSettings, ParentResult, diagnostics
from metatrain_mbe.data import SubclusterSet, read_structures
from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan
from metatrain_mbe.interface.reference_analysis import analyze_reference
from metatrain_mbe.interface.report.markdown import write_markdown

from ..conftest import E1_AR, hydrogen_cluster


@pytest.fixture
def labelled_frames(tmp_path, lj_dataset):
    """The three Ar parents of ``lj_dataset`` as read from ``labelled.xyz``."""
    path = tmp_path / "labelled.xyz"
    ase.io.write(path, lj_dataset, format="extxyz")
    return read_structures(path)


def test_reference_only_analysis_writes_tables_figures_and_flags(tmp_path, labelled_frames):
    out = tmp_path / "out"
    report = analyze_reference(labelled_frames, out, AnalysisSettings(group_by="regime"))
    for name in [
        "reference/mbe_energy.mts",
        "reference/mbe_summary.mts",
        "report.json",
        "report.md",
        "figures/body_orders.png",
        "figures/dimers.png",
    ]:
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text())["flags"] == report["flags"]
    assert report["source"] == {"data": "labelled.xyz"}
    assert report["e1"] == {"Ar": pytest.approx(E1_AR)} and report["e1_given"] == []
    # 3 parents, 2 low and 1 high: every group is below MIN_PARENTS
    assert report["flags"]["few_parents"] == {"reference": {"all": 3, "low": 2, "high": 1}}
    assert "undertrained" not in report["flags"]
    assert [row["group"] for row in report["per_parent"]] == ["low", "high", "low"]
    assert len(report["per_parent"][0]["reference"]["dV_tilde"]) == 6
    # the labelled dimers are the 15 pairs of each parent; V^(2) is the LJ pair energy
    dimers = report["dimers"]["Ar-Ar"]
    r = torch.tensor(dimers["r"], dtype=torch.float64)
    assert len(r) == 3 * 15
    lj = 4 * 0.01 * ((1 / r) ** 12 - (1 / r) ** 6)
    torch.testing.assert_close(torch.tensor(dimers["reference"], dtype=torch.float64), lj)
    text = (out / "report.md").read_text()
    assert "# Many-body expansion of the reference labels" in text
    assert "Analysed: data: labelled.xyz." in text
    assert "> **Warning:** statistics over N < 10 parents (reference: all (3)" in text
    assert r"| m | \|dṼ/dr\| reference (eV/Å) | Ṽ reference (eV/atom) |" in text
    assert "### high (1 parent)" in text and "| 6 |" in text
    assert f"| Ar | {E1_AR:.6f} | isolated atom of the data |" in text
    assert "in eV per dimer" in text and "| Ar-Ar | 45 |" in text
    assert "![Dimer curves](figures/dimers.png)" in text


def test_given_e1_is_reported_as_given(tmp_path, labelled_frames):
    settings = AnalysisSettings(e1={"Ar": E1_AR + 0.1})
    report = analyze_reference(labelled_frames, tmp_path / "out", settings)
    assert report["e1_given"] == ["Ar"] and report["e1"]["Ar"] == pytest.approx(E1_AR + 0.1)
    assert "| given (--e1) |" in (tmp_path / "out" / "report.md").read_text()


def test_no_labelled_set_writes_nothing(tmp_path, labelled_frames):
    parents_only = [a for a in labelled_frames if "mbe_atoms" not in a.info and len(a) > 1]
    with pytest.raises(MBEInputError, match="no parent has labelled sub-clusters"):
        analyze_reference(parents_only, tmp_path / "out", AnalysisSettings())
    assert not (tmp_path / "out").exists()


def _group(n_parents: int) -> dict:
    return {"n_parents": n_parents, "orders": {}}


def test_few_parents_flag_names_each_small_group():
    report = {
        "model": {"groups": {"all": _group(12), "low": _group(9), "high": _group(3)}},
        "reference": {"groups": {"all": _group(10), "low": _group(2)}},
    }
    flags = diagnostics.report_flags(report)
    assert flags["few_parents"] == {"model": {"low": 9, "high": 3}, "reference": {"low": 2}}
    assert flags["warnings"] == [
        "statistics over N < 10 parents (model: low (9), high (3); reference: low (2)): "
        "the means and standard deviations are rough"
    ]
    large = {"reference": {"groups": {"all": _group(10)}}}
    assert diagnostics.report_flags(large) == {
        "min_parents": 10,
        "few_parents": {},
        "warnings": [],
    }


def _rmse(rmse: float, spread: float) -> dict:
    entry = {"n_subclusters": 20, "energy_per_atom": rmse, "reference_std_per_atom": spread}
    return {"2": {**entry, "energy_per_atom": 1.0}, "8": entry}


@pytest.mark.parametrize(
    "rmse, spread, flagged",
    [(0.004, 0.010, False), (0.006, 0.010, True), (0.020, 0.010, True)],
)
def test_undertrained_flag_compares_the_largest_order_with_the_reference_spread(
    rmse, spread, flagged
):
    report = {"reference": {"groups": {"all": _group(50)}}, "rmse": _rmse(rmse, spread)}
    flags = diagnostics.report_flags(report)
    assert flags["undertrained"] == {
        "order": 8,
        "rmse_per_atom": rmse,
        "reference_std_per_atom": spread,
        "ratio": pytest.approx(rmse / spread),
        "limit": diagnostics.UNDERTRAINED_RATIO,
        "flagged": flagged,
    }
    assert any("undertrained" in w for w in flags["warnings"]) is flagged


def test_undertrained_is_not_judged_without_a_spread():
    report = {"reference": {"groups": {"all": _group(50)}}, "rmse": _rmse(0.1, 0.0)}
    assert "undertrained" not in diagnostics.report_flags(report)


def _result(energies: torch.Tensor, reference: torch.Tensor) -> ParentResult:
    parent = hydrogen_cluster(3)
    parent.info["mbe_parent"] = 0
    plan = SubsetPlan(3)
    gradients = torch.zeros((len(plan.atom_rows()[0]), 3), dtype=torch.float64)
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    labelled = SubclusterSet(parent, plan, reference, None)
    total = float(energies[plan.find([0, 1, 2])])
    return ParentResult(parent, plan, energies, gradients, terms, total, labelled)


def test_order_rmse_holds_the_spread_of_the_reference_energies_per_atom():
    plan = SubsetPlan(3)
    reference = torch.tensor([0.0, -1, -1, -1, -2.5, -2.1, -2.3, -3.3], dtype=torch.float64)
    assert plan.orders.tolist() == [0, 1, 1, 1, 2, 2, 2, 3]
    rmse = diagnostics.order_rmse([_result(reference + 0.2 * plan.orders, reference)])
    assert rmse["2"]["energy_per_atom"] == pytest.approx(0.2)
    # reference E(S)/2 of the pairs: -1.25, -1.05, -1.15
    assert rmse["2"]["reference_std_per_atom"] == pytest.approx(
        float(torch.tensor([-1.25, -1.05, -1.15]).std(unbiased=False))
    )
    assert rmse["1"]["reference_std_per_atom"] == 0.0 and rmse["3"]["n_subclusters"] == 1


def test_model_markdown_states_the_units_of_each_rmse(tmp_path):
    report = {
        "units": diagnostics.units([]),
        "model": {"groups": {"all": _group(4)}},
        "e1_check": {"difference": {}},
        "rmse": _rmse(0.02, 0.01),
        "dimers": {
            "H-H": {
                "grid": {"r": [0.5, 0.7, 1.0], "model": [1.0, -0.2, -0.1]},
                "r": [0.74],
                "reference": [-0.25],
                "model": [-0.2],
                "rmse": 0.05,
            }
        },
    }
    report["flags"] = diagnostics.report_flags(report)
    write_markdown(tmp_path / "r.md", report, {}, None, "model: pet.pt, data: test.xyz")
    text = (tmp_path / "r.md").read_text()
    assert "Analysed: model: pet.pt, data: test.xyz." in text
    assert "> **Warning:** statistics over N < 10 parents (model: all (4))" in text
    assert "> **Warning:** the model looks undertrained" in text
    assert "| 8 | 20 | 0.02 | 0.01 | — |" in text
    assert (
        "RMSE of E(S) per atom (eV/atom)" in text and "RMSE of model V^(2) (eV per dimer)" in text
    )
    assert "| H-H | 1 | 0.740 – 0.740 | -0.2500 at 0.740 | -0.2000 at 0.700 | 0.05 |" in text
