"""PNG figures of the MBE report (matplotlib, imported lazily).

Each figure is drawn from the report dict alone, so it can be redrawn from a
saved ``report.json``, for a model report and a reference-only one (no
``model`` section) alike. Quantities are typeset with matplotlib's mathtext;
every figure is titled with what was analysed (the model and data files); means
carry error bars of one standard deviation over the parents, next to the
value of each parent; a value that a log axis cannot show (zero or negative) is
drawn as an open triangle at the bottom of the axis rather than dropped; the
dimer curves wrap into a grid of at most :data:`MAX_COLUMNS` columns.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from ...analysis import ALL

__all__ = ["MAX_COLUMNS", "draw_figures", "write_figures"]

LOGGER = logging.getLogger(__name__)

#: most panels side by side in a figure with one panel per species pair
MAX_COLUMNS = 4

V_TILDE = r"$\tilde{V}^{(m)}$"
DV_TILDE = r"$|\mathrm{d}\tilde{V}^{(m)}/\mathrm{d}r|$"

#: how each source is drawn: colour, marker of the mean and x offset (so that
#: the two do not hide each other at the same body order)
STYLES = {"reference": ("black", "s", -0.1), "model": ("C0", "o", 0.1)}


def write_figures(directory: Path, report: dict, source: str = "") -> dict[str, str]:
    """Draw every figure the report has data for into ``directory``.

    :param source: what was analysed, under each figure's title (e.g. the model
        and data file names).
    :return: figure title by path relative to ``directory.parent``; empty
        when matplotlib is not installed.
    """
    try:
        import matplotlib.pyplot as plt

        figures = draw_figures(report, source)
    except ImportError:
        LOGGER.info("matplotlib is not installed: the report has no figures")
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for name, (title, figure) in figures.items():
        figure.savefig(directory / f"{name}.png", dpi=150)
        plt.close(figure)
        drawn[f"{directory.name}/{name}.png"] = title
    return drawn


def draw_figures(report: dict, source: str = "") -> dict:
    """Every figure the report has data for: ``{name: (title, Figure)}``.

    :raises ImportError: without matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    for name, title, draw in [
        ("body_orders", "Body-ordered terms per parent", _body_orders),
        ("rmse", "Per-order RMSE of the model on the labelled sub-clusters", _rmse),
        ("baselines", "Body-ordered terms with each isolated-atom energy baseline", _baselines),
        ("dimers", "Dimer curves", _dimers),
        ("soap_distance", "SOAP distance of the sub-clusters to the training set", _soap),
    ]:
        figure = draw(plt, report)
        if figure is None:
            continue
        figure.suptitle(f"{title}\n{source}" if source else title, fontsize=11)
        figures[name] = (title, figure)
    return figures


def _sources(report: dict) -> list[str]:
    return [source for source in STYLES if source in report]


def _body_orders(plt, report: dict):
    """Ṽ^(m) and |dṼ^(m)/dr| against m, one column per group: each parent's
    values and the mean ± std over the parents, for the reference and the model."""
    primary = report["model" if "model" in report else "reference"]["groups"]
    groups = [g for g in primary if g != ALL] or [ALL]
    figure, axes = plt.subplots(
        2, len(groups), figsize=(4.5 * len(groups), 7.5), squeeze=False, layout="constrained"
    )
    for column, group in enumerate(groups):
        rows = [p for p in report.get("per_parent", []) if group == ALL or p["group"] == group]
        for row, (key, label) in enumerate(
            [
                ("V_tilde", f"{V_TILDE} ({report['units']['V_tilde']})"),
                ("dV_tilde", f"{DV_TILDE} (eV/Å)"),
            ]
        ):
            ax = axes[row, column]
            for source in _sources(report):
                color, marker, shift = STYLES[source]
                points = [
                    (m + shift, value)
                    for p in rows
                    if key in p.get(source, {})
                    for m, value in enumerate(p[source][key][1:], start=2)
                ]
                if points:
                    x, y = zip(*points)
                    ax.plot(x, y, ".", color=color, alpha=0.5, ms=4, label=f"{source}, each parent")
                stats = report[source]["groups"].get(group, {}).get("orders", {})
                orders = [m for m in stats if key in stats[m]]
                if orders:
                    ax.errorbar(
                        [int(m) + shift for m in orders],
                        [stats[m][key]["mean"] for m in orders],
                        yerr=[stats[m][key]["std"] for m in orders],
                        fmt=marker,
                        color=color,
                        mfc="none",
                        ms=9,
                        mew=1.5,
                        capsize=4,
                        label=f"{source}, mean ± std",
                    )
            ax.axhline(0, color="grey", lw=0.5)
            _order_axis(ax, "body order $m$")
            ax.set_ylabel(label)
            if row == 0:
                n = primary[group]["n_parents"]
                ax.set_title(f"{group} ({n} parent{'s' * (n != 1)})")
            if column == 0:
                ax.legend(fontsize=7)
    return figure


def _rmse(plt, report: dict):
    """Per-order RMSE of E(S) per atom and of the forces on a log axis, with the
    spread of the reference E(S) per atom (the RMSE of a constant energy per atom)."""
    if "rmse" not in report:
        return None
    rmse = report["rmse"]
    orders = [int(m) for m in rmse]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    panels = [
        (
            "$E(S)$ per atom (eV/atom)",
            [
                ("energy_per_atom", "x-", "C0", "model RMSE"),
                ("reference_std_per_atom", "s--", "grey", "std of the reference"),
            ],
        ),
        ("forces (eV/Å)", [("forces", "x-", "C0", "model RMSE")]),
    ]
    for ax, (label, series) in zip(axes, panels):
        values = {key: [rmse[str(m)].get(key, math.nan) for m in orders] for key, *_ in series}
        every = [v for column in values.values() for v in column]
        if all(math.isnan(v) for v in every):
            ax.text(0.5, 0.5, f"no labels for {label}", ha="center", transform=ax.transAxes)
            continue
        floor = min((v for v in every if v > 0), default=1.0) / 10
        for key, fmt, color, name in series:
            _log_series(ax, orders, values[key], floor, fmt, color, name)
        ax.set_yscale("log")
        _order_axis(ax, "sub-cluster size $m$")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    return figure


def _order_axis(ax, label: str) -> None:
    """An x axis of body orders or sub-cluster sizes: integer ticks."""
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(label)


def _log_series(ax, x: list[int], values: list[float], floor: float, fmt, color, label) -> None:
    """Plot ``values`` on a log axis: positive ones as they are, zero or
    negative ones as open triangles at ``floor``; NaN (no data) is left out."""
    shown = [(m, v) for m, v in zip(x, values) if v > 0]
    hidden = [m for m, v in zip(x, values) if v <= 0]
    if shown:
        ax.plot(*zip(*shown), fmt, color=color, label=label)
    if hidden:
        ax.plot(
            hidden,
            [floor] * len(hidden),
            "v",
            color=color,
            mfc="none",
            ms=8,
            label=f"{label} ≤ 0 (drawn at {floor:.1e})",
        )


def _baselines(plt, report: dict):
    if not report.get("baselines", {}).get("V_tilde"):
        return None
    v_tilde = report["baselines"]["V_tilde"]
    figure, axes = plt.subplots(
        1, len(v_tilde), figsize=(4.5 * len(v_tilde), 4), squeeze=False, layout="constrained"
    )
    for ax, (source, by_baseline) in zip(axes[0], v_tilde.items()):
        for name, values in by_baseline.items():
            ax.plot([int(m) for m in values], list(values.values()), "o-", label=f"{name} $E_1$")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(source)
        _order_axis(ax, "body order $m$")
        ax.set_ylabel(f"mean {V_TILDE} ({report['units']['V_tilde']})")
        ax.legend(fontsize=7)
    return figure


def _dimers(plt, report: dict):
    """V^(2)(r) per species pair, in a grid of at most :data:`MAX_COLUMNS`
    columns: the labelled dimers (reference, and the model on the same dimers)
    and the model's curve."""
    dimers = report.get("dimers", {})
    if not dimers:
        return None
    columns = min(MAX_COLUMNS, len(dimers))
    rows = math.ceil(len(dimers) / columns)
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.6 * columns, 3.0 * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for k, (ax, (name, data)) in enumerate(zip(axes.flat, dimers.items())):
        if "grid" in data:
            ax.plot(data["grid"]["r"], data["grid"]["model"], "-", color="C0", label="model")
        observed = data.get("reference", [])
        if observed:
            ax.plot(data["r"], observed, "x", color="k", label="reference, labelled dimers")
            if "model" in data:
                ax.plot(data["r"], data["model"], ".", color="C0", ms=4, label="model, same dimers")
            # the model's curve may rise far above them at short range
            values = observed + data.get("model", [])
            low, high = min(values), max(values)
            span = high - low or 1.0
            ax.set_ylim(low - 0.3 * span, high + 0.3 * span)
        ax.axhline(0, color="grey", lw=0.5)
        title = f"{name} ({len(observed)} labelled dimers)"
        if "rmse" in data:
            title += f"\nmodel RMSE {data['rmse']:.3g} eV"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("$r$ (Å)")
        if k % columns == 0:
            ax.set_ylabel("$V^{(2)}(r)$ (eV)")
    for ax in axes.flat[len(dimers) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    return figure


def _soap(plt, report: dict):
    if "soap_distance" not in report:
        return None
    data = report["soap_distance"]["orders"]
    orders = [int(m) for m in data]
    figure, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    ax.plot(orders, [data[str(m)]["mean"] for m in orders], "o-", label="mean")
    ax.plot(orders, [data[str(m)]["max"] for m in orders], "v--", label="largest")
    _order_axis(ax, "sub-cluster size $m$")
    ax.set_ylabel("SOAP distance to the nearest\ntraining structure")
    ax.legend(fontsize=7)
    return figure
