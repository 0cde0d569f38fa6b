"""The study report's Fig. 5 and Fig. 6 layouts, drawn from synthetic points."""

import matplotlib.pyplot as plt
import pytest
from matplotlib.container import ErrorbarContainer

from metatrain_mbe.analysis.study import dataset_findings, extrapolation_findings
from metatrain_mbe.interface.report.study import write_study_report
from metatrain_mbe.interface.report.study_figures import (
    dataset_figure,
    extrapolation_figure,
)
from metatrain_mbe.interface.study import StudyOptions

from ..analysis.test_study_findings import (
    COMPOSITIONS,
    DATASETS,
    FAMILIES,
    GROUPS,
    _dataset_points,
    _ood_points,
)


@pytest.fixture
def kept_figures(monkeypatch):
    """The figures the functions draw, kept open instead of closed."""
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    return figures


def test_dataset_figure_has_a_line_per_order_against_the_dataset_proportion(tmp_path, kept_figures):
    points = _dataset_points()
    assert dataset_figure(plt, tmp_path / "d.png", points, "eV/atom") == "d.png"
    (fig,) = kept_figures
    axes = fig.axes
    assert len(axes) == 3 * 2 * 2  # architectures x (groups all, high) x (Ṽ, |dṼ/dr|)
    lines = [c for c in axes[1].containers if isinstance(c, ErrorbarContainer)]
    assert len(lines) == 7  # m = 2..8
    x, y = lines[0].lines[0].get_data()
    assert list(x) == list(DATASETS) and axes[1].get_xscale() == "log"
    assert len(axes[1].get_lines()) >= 7 + 7  # and a dashed reference per order
    assert (tmp_path / "d.png").stat().st_size > 0


def test_extrapolation_figure_has_a_column_per_composition(tmp_path, kept_figures):
    points = _ood_points()
    extrapolation_figure(plt, tmp_path / "e.png", points, COMPOSITIONS, "density")
    (fig,) = kept_figures
    axes = fig.axes
    assert len(axes) == 2 * 3
    assert [ax.get_title() for ax in axes[:3]] == [f"trained on {n}" for n in COMPOSITIONS]
    series = [c for c in axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(series) == 3 * 2  # architectures x (without, with sub-clusters)
    markers = {c.lines[0].get_marker() for c in series}
    assert markers == {"o", "x"}
    x, _ = series[0].lines[0].get_data()
    assert list(x) == [float(g) for g in GROUPS]
    assert axes[3].get_xlabel() == "density" and axes[0].get_yscale() == "log"


def test_the_report_draws_both_layouts_and_states_the_findings(tmp_path):
    main = _dataset_points()  # composition "all"
    points = main + _ood_points()
    compositions = {"all": {"selection": "all", "training_values": []}}
    compositions |= {name: {"selection": {"regime": name}, **c} for name, c in COMPOSITIONS.items()}
    options = StudyOptions(
        architectures={a: f"{a}.yaml" for a in FAMILIES},
        extrapolation={"files": ["x.xyz"], "group_by": "density"},
    )
    study = {
        "study": options.model_dump(),
        "runs": [],
        "points": points,
        "compositions": compositions,
        "main_composition": "all",
        "findings": {},
        "findings_by_dataset": dataset_findings(main, FAMILIES),
        "findings_extrapolation": extrapolation_findings(points, FAMILIES, compositions),
    }
    write_study_report(tmp_path, study)
    figures = tmp_path / "figures"
    assert (figures / "body_orders_by_dataset.png").exists()
    assert (figures / "extrapolation.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert report.count("| reproduced |") == 6 + 5
    assert "| mace (low) | 1 | 1 |" in report  # the out-of-distribution table
