"""The report of a study: ``report.md`` with its findings and tables, and
figures in the paper's layout (``figures/*.png``, when matplotlib is installed).

Units: Ṽ^(m) in eV per body (eV/atom, or eV/molecule when the parents declare
fragments), |dṼ^(m)/dr| in eV/Å, energy RMSE in meV/atom (eV/atom in
``extrapolation.png``, as the paper's Fig. 6), force RMSE in eV/Å, E_1 in eV.
Error bars and ± are standard deviations over seeds. With several training
compositions, the tables name each model by architecture and composition; the
findings of Fig. 3-5 and their figures are on the main composition (the first
that trains on every training parent).
"""

from __future__ import annotations

import math
from pathlib import Path

from ...analysis.diagnostics import E1_TOLERANCE
from ...analysis.study import (
    CONVERGING,
    FAR,
    GROWS,
    MUCH_BETTER,
    PINNED,
    RESOLVED,
    TREND,
    deviation,
)
from .study_figures import dataset_figure, extrapolation_figure

__all__ = ["write_study_report"]


def write_study_report(directory: Path, study: dict) -> None:
    """Write ``report.md`` and ``figures/`` of a study (the content of ``study.json``)."""
    unit = next((r["v_tilde_unit"] for r in study["runs"] if "v_tilde_unit" in r), "eV/atom")
    figures = _write_figures(directory / "figures", study, unit)
    named = len(study["compositions"]) > 1 or "all" not in study["compositions"]
    points = [{**p, "label": _label(p, named)} for p in study["points"]]
    lines = ["# MBE study", ""]
    lines += _summary(study)
    lines += _e1_section(points)
    lines += _findings_section(
        {
            **{
                f"{regime} test parents (Figs. 3-4)": findings
                for regime, findings in study["findings"].items()
            },
            "dataset size (Fig. 5)": study["findings_by_dataset"],
            "out of distribution (Fig. 6)": study["findings_extrapolation"],
        }
    )
    lines += _rmse_section(points)
    lines += _extrapolation_section(points, study["study"]["extrapolation"]["group_by"])
    lines += _trend_tables(points, unit)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}](figures/{name})" for name in figures]
        lines.append("")
    (directory / "report.md").write_text("\n".join(lines) + "\n")


def _label(point: dict, named: bool) -> str:
    """How the tables name a point's model: its architecture, and its
    composition when the study names compositions."""
    return f"{point['architecture']} ({point['composition']})" if named else point["architecture"]


# The first columns of every per-point table: which model, trained how.
_ROW_HEADER = "| architecture | proportion | dataset | "


def _row_head(point: dict) -> str:
    """A point's first cells in the per-point tables (:data:`_ROW_HEADER`)."""
    return f"| {point['label']} | {point['proportion']:g} | {point['dataset_proportion']:g} | "


def _summary(study: dict) -> list[str]:
    options, runs = study["study"], study["runs"]
    failed = [r for r in runs if "error" in r]
    judged = (
        "evaluation files " + ", ".join(options["evaluation"])
        if options["evaluation"]
        else "the shared test parents"
    )
    compositions = ", ".join(
        f"{name} ({_selection(c['selection'])})" for name, c in study["compositions"].items()
    )
    extrapolation = options["extrapolation"]
    lines = [
        f"{len(runs)} runs: architectures {', '.join(options['architectures'])}; "
        f"training compositions {compositions}; "
        f"augmentation proportions {options['proportions']}; dataset proportions "
        f"{options['dataset_proportions']}; seeds {options['seeds']}. Every run shares one "
        f"split of the parents (validation {options['validation_set']}, test "
        f"{options['test_set']}, seed {options['split_seed']}); a composition trains and "
        "validates on its own parents of that split and tests on all its test parents; the "
        f"body orders are judged on {judged} (composition {study['main_composition']})"
        + (
            f"; out of distribution on {', '.join(extrapolation['files'])}, grouped by "
            f"{extrapolation['group_by'] or 'nothing'}"
            if extrapolation["files"]
            else ""
        )
        + ". Mean ± standard deviation over seeds.",
        "",
    ]
    for record in failed:
        lines += [f"- **failed**: {record['name']}: {record['error']}"]
    return lines + ([""] if failed else [])


def _e1_section(points: list[dict]) -> list[str]:
    lines = [
        "## Isolated-atom energy E_1",
        "",
        "A model E_1 off the reference by δ shifts its Ṽ^(m) by ±δ at every order "
        "(appendix C); the tables and figures below use the reference E_1 for model and "
        "reference alike, and |dṼ^(m)/dr| does not depend on E_1. Models whose E_1 "
        "`mbe.fix_e1` calibrates after training (PET) also show the trained E_1, before "
        "the shift of their composition baseline.",
        "",
        _ROW_HEADER + "model E_1 − reference (meV) | trained, before calibration (meV) |",
        "|---|---|---|---|---|",
    ]
    warnings = []
    for point in points:
        e1 = point.get("e1", {})
        for symbol, stats in e1.get("model", {}).items():
            reference = e1["reference"][symbol]["mean"]
            error = stats["mean"] - reference
            trained = e1.get("trained", {}).get(symbol)
            before = (
                f"{_mev(trained['mean'] - reference)} ± {1000 * trained['std']:.1f}"
                if trained
                else "not calibrated"
            )
            lines.append(
                f"{_row_head(point)}{symbol}: "
                f"{_mev(error)} ± {1000 * stats['std']:.1f} | {before} |"
            )
            if abs(error) > E1_TOLERANCE:
                warnings.append(f"{point['label']} at {point['proportion']:g} ({symbol})")
    lines.append("")
    if warnings:
        lines += [
            f"**Warning**: model E_1 differs from the reference by more than "
            f"{1000 * E1_TOLERANCE:.0f} meV for {', '.join(warnings)}.",
            "",
        ]
    return lines


def _selection(selection) -> str:
    """A composition's selection as text: ``all`` or ``regime=low``."""
    if selection == "all":
        return "every training parent"
    return ", ".join(f"{key}={value}" for key, value in selection.items())


def _mev(energy: float) -> str:
    """An energy difference (eV) in signed meV to 0.1, without a "-0.0"."""
    return f"{round(1000 * energy, 1) + 0.0:+.1f}"


def _verdict(holds) -> str:
    return {True: "reproduced", False: "**not reproduced**", None: "cannot tell"}[holds]


def _findings_section(findings: dict[str, list[dict]]) -> list[str]:
    lines = [
        "## The paper's findings",
        "",
        f"An order counts as resolved within {RESOLVED:.0%} of the reference and as far "
        f"beyond {FAR:.0%} (relative deviation of the mean over the judged parents). An "
        "effective expansion converges when its mean |dṼ/dr| over the upper half of the "
        f"orders is at most {CONVERGING:g} times that over the lower half; a term is pinned "
        f"when it spreads by at most {PINNED:.0%} over the dataset proportions and grows "
        f"with the data when it rises by a factor {GROWS:g} or more from the smallest to the "
        f"largest; an error grows away from the training regime when its Spearman "
        f"correlation with the distance to the nearest training value is {TREND:g} or more; "
        f"a model extrapolates much better when sub-clusters take its out-of-distribution "
        f"energy RMSE below {MUCH_BETTER:g} times its value without.",
        "",
    ]
    for group, items in findings.items():
        lines += [f"### {group}", "", "| finding | this study | evidence |", "|---|---|---|"]
        lines += [f"| {f['claim']} | {_verdict(f['holds'])} | {f['evidence']} |" for f in items]
        lines.append("")
    return lines


def _rmse_section(points: list[dict]) -> list[str]:
    lines = [
        "## Accuracy on the test parents and their sub-clusters",
        "",
        _ROW_HEADER + "energy RMSE (meV/atom) | force RMSE (eV/Å) |"
        " sub-cluster energy RMSE per order m = 2.. (meV/atom) |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        rmse = p.get("rmse", {})
        energy, forces = rmse.get("energy_per_atom", {}), rmse.get("forces", {})
        orders = [
            f"{1000 * entry['energy_per_atom']['mean']:.0f}"
            for order, entry in p.get("order_rmse", {}).items()
            if order != "1" and "energy_per_atom" in entry
        ]
        lines.append(
            f"{_row_head(p)}{_pm(energy, 1000)} | {_pm(forces)} | {' / '.join(orders) or '-'} |"
        )
    return lines + [""]


def _extrapolation_section(points: list[dict], group_by: str | None) -> list[str]:
    """Energy and force RMSE per extrapolation group, a column per value of
    ``group_by`` (when the study measured them)."""
    measured = [p for p in points if p.get("extrapolation")]
    if not measured:
        return []
    groups = list(measured[0]["extrapolation"])
    lines = [
        "## Accuracy out of distribution",
        "",
        "Full-structure energy RMSE (meV/atom) / force RMSE (eV/Å) on the extrapolation "
        f"structures, per value of {group_by or 'nothing (one group)'}.",
        "",
        _ROW_HEADER + " | ".join(groups) + " |",
        "|---|---|---|" + "---|" * len(groups),
    ]
    for p in measured:
        cells = [
            f"{_pm(p['extrapolation'][g].get('energy_per_atom', {}), 1000)} / "
            f"{_pm(p['extrapolation'][g].get('forces', {}))}"
            if g in p["extrapolation"]
            else "-"
            for g in groups
        ]
        lines.append(_row_head(p) + " | ".join(cells) + " |")
    return lines + [""]


def _pm(stats: dict, scale: float = 1.0) -> str:
    if not stats or not math.isfinite(stats.get("mean", math.nan)):
        return "-"
    return f"{scale * stats['mean']:.3g} ± {scale * stats['std']:.2g}"


def _trend_tables(points: list[dict], unit: str) -> list[str]:
    lines = ["## Body-ordered terms, model against reference", ""]
    groups = sorted({g for p in points for g in p.get("groups", {})})
    for group in groups:
        for quantity, title in (("dV_tilde", "|dṼ/dr| (eV/Å)"), ("V_tilde", f"Ṽ ({unit})")):
            rows = [p for p in points if group in p.get("groups", {})]
            orders = sorted(
                {
                    o
                    for p in rows
                    for o in p["groups"][group].get("reference", {}).get(quantity, {})
                },
                key=int,
            )
            if not orders:
                continue
            lines += [
                f"### {group}: {title}",
                "",
                _ROW_HEADER + " | ".join(f"m = {o}" for o in orders) + " |",
                "|---|---|---|" + "---|" * len(orders),
            ]
            reference = rows[0]["groups"][group]["reference"][quantity]
            lines.append(
                "| reference | | | "
                + " | ".join(f"{reference[o]['mean']:.3g}" for o in orders)
                + " |"
            )
            for p in rows:
                model = p["groups"][group].get("model", {}).get(quantity, {})
                cells = [
                    f"{model[o]['mean']:.3g} ({100 * deviation(p, group, quantity, o):.0f} %)"
                    if o in model
                    else "-"
                    for o in orders
                ]
                lines.append(_row_head(p) + " | ".join(cells) + " |")
            lines.append("")
    return lines


def _write_figures(directory: Path, study: dict, unit: str) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    points = [p for p in study["points"] if p["composition"] == study["main_composition"]]
    if not points:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    proportions = sorted({p["proportion"] for p in points})
    datasets = sorted({p["dataset_proportion"] for p in points})
    if len(proportions) > 1:
        at_full = [p for p in points if p["dataset_proportion"] == datasets[-1]]
        written.append(
            _trends(
                plt,
                directory / "body_orders_by_proportion.png",
                at_full,
                "proportion",
                "augmentation proportion",
                unit,
            )
        )
        written.append(_rmse_figure(plt, directory / "rmse_by_proportion.png", at_full))
    if len(datasets) > 1:
        at_lowest = [p for p in points if p["proportion"] == proportions[0]]
        written.append(
            dataset_figure(plt, directory / "body_orders_by_dataset.png", at_lowest, unit)
        )
    measured = [p for p in study["points"] if p.get("extrapolation")]
    if measured:
        largest = max(p["dataset_proportion"] for p in measured)
        written.append(
            extrapolation_figure(
                plt,
                directory / "extrapolation.png",
                [p for p in measured if p["dataset_proportion"] == largest],
                study["compositions"],
                study["study"]["extrapolation"]["group_by"] or "group",
            )
        )
    return written


def _trends(plt, path: Path, points: list[dict], axis: str, label: str, unit: str) -> str:
    """Fig. 3: Ṽ^(m) and |dṼ^(m)/dr| against m, one line per value of
    ``axis``, reference as black crosses; rows architectures, columns groups."""
    archs = sorted({p["architecture"] for p in points})
    groups = sorted({g for p in points for g in p.get("groups", {})})
    values = sorted({p[axis] for p in points})
    fig, axes = plt.subplots(
        len(archs),
        2 * len(groups),
        squeeze=False,
        figsize=(3.2 * 2 * len(groups), 2.6 * len(archs)),
    )
    # viridis without its last, pale yellow eighth
    colours = plt.cm.viridis([0.85 * k / max(1, len(values) - 1) for k in range(len(values))])
    for row, arch in enumerate(archs):
        for col, (group, quantity) in enumerate(
            (g, q) for g in groups for q in ("V_tilde", "dV_tilde")
        ):
            ax = axes[row, col]
            for value, colour in zip(values, colours):
                point = next(
                    (p for p in points if p["architecture"] == arch and p[axis] == value), None
                )
                model = (point or {}).get("groups", {}).get(group, {}).get("model", {})
                series = model.get(quantity, {})
                if series:
                    orders = sorted(series, key=int)
                    ax.errorbar(
                        [int(o) for o in orders],
                        [series[o]["mean"] for o in orders],
                        yerr=[series[o]["std"] for o in orders],
                        color=colour,
                        marker="o",
                        ms=3,
                        capsize=2,
                        label=f"{value:g}",
                    )
            reference: dict = next(
                (
                    p["groups"][group]["reference"][quantity]
                    for p in points
                    if group in p.get("groups", {})
                    and quantity in p["groups"][group].get("reference", {})
                ),
                {},
            )
            orders = sorted(reference, key=int)
            ax.plot(
                [int(o) for o in orders],
                [reference[o]["mean"] for o in orders],
                "kx",
                ms=7,
                label="reference",
            )
            symbol = f"Ṽ$^{{(m)}}$ ({unit})" if quantity == "V_tilde" else "|dṼ$^{(m)}$/dr| (eV/Å)"
            ax.set_title(f"{arch}, {group}", fontsize=9)
            ax.set_xlabel("m")
            ax.set_ylabel(symbol, fontsize=8)
    axes[0, -1].legend(title=label, fontsize=7, title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _rmse_figure(plt, path: Path, points: list[dict]) -> str:
    """Fig. 4: full-structure (circles) and mean sub-cluster (crosses) RMSE
    against the augmentation proportion, energy and forces."""
    archs = sorted({p["architecture"] for p in points})
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for k, arch in enumerate(archs):
        rows = sorted(
            (p for p in points if p["architecture"] == arch), key=lambda p: p["proportion"]
        )
        x = [p["proportion"] for p in rows]
        colour = f"C{k}"
        for ax, quantity, scale in ((axes[0], "energy_per_atom", 1000), (axes[1], "forces", 1)):
            full = [p.get("rmse", {}).get(quantity, {}) for p in rows]
            ax.errorbar(
                x,
                [scale * s.get("mean", math.nan) for s in full],
                yerr=[scale * s.get("std", 0.0) for s in full],
                color=colour,
                marker="o",
                capsize=2,
                label=f"{arch} full",
            )
            sub = [_mean_orders(p, quantity) for p in rows]
            ax.plot(
                x,
                [scale * v for v in sub],
                color=colour,
                marker="x",
                ls="--",
                label=f"{arch} sub-clusters",
            )
    axes[0].set_ylabel("energy RMSE (meV/atom)")
    axes[1].set_ylabel("force RMSE (eV/Å)")
    for ax in axes:
        ax.set_xlabel("augmentation proportion")
        ax.set_xscale("symlog", linthresh=0.01)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _mean_orders(point: dict, quantity: str) -> float:
    values = [
        entry[quantity]["mean"]
        for order, entry in point.get("order_rmse", {}).items()
        if order != "1" and quantity in entry
    ]
    return sum(values) / len(values) if values else math.nan
