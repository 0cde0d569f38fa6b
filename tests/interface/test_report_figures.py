"""The report's figures: titles, mathtext, error bars, log axes and the dimer grid."""

import math

import pytest
from matplotlib.container import ErrorbarContainer

from metatrain_mbe.interface.report import describe_source, write_extras
from metatrain_mbe.interface.report.figures import MAX_COLUMNS, draw_figures, write_figures


def _stats(values: list[float]) -> dict:
    mean = sum(values) / len(values)
    return {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))}


def reference_report(n_pairs: int = 1) -> dict:
    """A reference-only report: two parents of 3 atoms, ``n_pairs`` dimer pairs."""
    per_parent = [
        {"parent": 0, "group": None, "n_atoms": 3, "reference": {"V_tilde": [-13, 0.1, -0.02]}},
        {"parent": 1, "group": None, "n_atoms": 3, "reference": {"V_tilde": [-13, 0.3, 0.04]}},
    ]
    for row in per_parent:
        row["reference"]["dV_tilde"] = [0.0, 2 * row["reference"]["V_tilde"][1], 0.01]
    orders = {
        str(m): {
            key: _stats([row["reference"][key][m - 1] for row in per_parent])
            for key in ("V_tilde", "dV_tilde")
        }
        for m in (2, 3)
    }
    symbols = ["H", "He", "Li", "Be", "B"]
    pairs = [f"{a}-{b}" for i, a in enumerate(symbols) for b in symbols[i:]][:n_pairs]
    return {
        "units": {"bodies": "atoms", "V_tilde": "eV/atom", "dV_tilde": "eV/Angstrom", "e1": "eV"},
        "source": {"data": "labelled.xyz"},
        "e1": {"H": -13.0},
        "reference": {"groups": {"all": {"n_parents": 2, "orders": orders}}},
        "per_parent": per_parent,
        "dimers": {name: {"r": [0.7, 1.0], "reference": [-0.2, -0.1]} for name in pairs},
    }


def test_body_orders_figure_is_titled_typeset_and_has_error_bars():
    report = reference_report()
    figures = draw_figures(report, describe_source(report))
    assert set(figures) == {"body_orders", "dimers"}
    title, figure = figures["body_orders"]
    assert figure.get_suptitle() == f"{title}\ndata: labelled.xyz"
    v_axis, dv_axis = figure.axes[0], figure.axes[1]
    assert v_axis.get_ylabel() == r"$\tilde{V}^{(m)}$ (eV/atom)"
    assert dv_axis.get_ylabel().startswith(r"$|\mathrm{d}\tilde{V}^{(m)}")
    (bars,) = [c for c in v_axis.containers if isinstance(c, ErrorbarContainer)]
    line, _, (vertical,) = bars.lines
    assert line.get_ydata() == pytest.approx([0.2, 0.01])  # the means over the parents
    segments = vertical.get_segments()
    assert [s[:, 1].tolist() for s in segments] == [
        pytest.approx([0.1, 0.3]),  # mean ± std
        pytest.approx([-0.02, 0.04]),
    ]
    labels = v_axis.get_legend_handles_labels()[1]
    assert labels == ["reference, each parent", "reference, mean ± std"]
    points = next(ln for ln in v_axis.get_lines() if ln.get_label() == "reference, each parent")
    assert sorted(points.get_ydata()) == pytest.approx([-0.02, 0.04, 0.1, 0.3])


def test_ten_dimer_pairs_wrap_into_a_grid():
    _, figure = draw_figures(reference_report(n_pairs=10))["dimers"]
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len(visible) == 10 and len(figure.axes) == 12
    rows, columns = visible[0].get_subplotspec().get_gridspec().get_geometry()
    assert (rows, columns) == (3, MAX_COLUMNS)
    assert [ax.get_title().split(" ")[0] for ax in visible][:3] == ["H-H", "H-He", "H-Li"]
    assert visible[0].get_ylabel() == "$V^{(2)}(r)$ (eV)" and visible[1].get_ylabel() == ""


def test_a_zero_rmse_stays_visible_on_the_log_axis():
    report = reference_report()
    report["rmse"] = {
        "1": {"n_subclusters": 3, "energy_per_atom": 0.0, "reference_std_per_atom": 0.0},
        "2": {"n_subclusters": 3, "energy_per_atom": 0.02, "reference_std_per_atom": 0.05},
        "3": {"n_subclusters": 1, "energy_per_atom": 0.01, "reference_std_per_atom": 0.04},
    }
    _, figure = draw_figures(report)["rmse"]
    energy, forces = figure.axes
    assert energy.get_yscale() == "log"
    zeros = [ln for ln in energy.get_lines() if "≤ 0" in ln.get_label()]
    assert len(zeros) == 2  # the model's RMSE and the reference spread at m = 1
    for line in zeros:
        assert line.get_xdata().tolist() == [1]
        (y,) = line.get_ydata()
        low, high = energy.get_ylim()
        assert y == pytest.approx(0.001) and low < y < high
    assert "no labels" in forces.texts[0].get_text()  # no forces: said, not left blank


def test_write_figures_and_extras_without_a_model(tmp_path):
    report = reference_report(n_pairs=3)
    drawn = write_figures(tmp_path / "figures", report, "data: x.xyz")
    assert drawn == {
        "figures/body_orders.png": "Body-ordered terms per parent",
        "figures/dimers.png": "Dimer curves",
    }
    assert all((tmp_path / path).stat().st_size > 10_000 for path in drawn)
    write_extras(tmp_path / "extras", report)
    text = (tmp_path / "extras" / "report.md").read_text()
    assert "Analysed: data: labelled.xyz." in text
    assert "![Dimer curves](figures/dimers.png)" in text
    assert not (tmp_path / "extras" / "parents.chemiscope.json.gz").exists()
