"""PNG figures of the model MBE report (matplotlib, imported lazily).

Each figure is drawn from the report dict alone, so it can be redrawn from a
saved ``report.json``.
"""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["write_figures"]

LOGGER = logging.getLogger(__name__)


def write_figures(directory: Path, report: dict) -> dict[str, str]:
    """Draw every figure the report has data for into ``directory``.

    :return: figure title by path relative to ``directory.parent``; empty
        when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        LOGGER.info("matplotlib is not installed: the report has no figures")
        return {}
    directory.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for name, title, draw in [
        ("body_orders", "Body-ordered energies and forces per parent", _body_orders),
        ("rmse", "Per-order RMSE of the model on labelled sub-clusters", _rmse),
        ("baselines", "Ṽ^(m) with each E_1 baseline", _baselines),
        ("dimers", "Dimer curves V^(2)(r)", _dimers),
        ("soap_distance", "SOAP distance of the sub-clusters to the training set", _soap),
    ]:
        figure = draw(plt, report)
        if figure is None:
            continue
        figure.savefig(directory / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)
        drawn[f"{directory.name}/{name}.png"] = title
    return drawn


def _groups(report: dict) -> list[str]:
    names = [g for g in report["model"]["groups"] if g != "all"]
    return names or ["all"]


def _body_orders(plt, report: dict):
    groups = _groups(report)
    figure, axes = plt.subplots(2, len(groups), figsize=(4.5 * len(groups), 7), squeeze=False)
    for column, group in enumerate(groups):
        rows = [p for p in report["per_parent"] if group == "all" or p["group"] == group]
        for row, (key, label) in enumerate(
            [("V_tilde", "Ṽ^(m) (eV/atom)"), ("dV_tilde", "|dṼ^(m)/dr| (eV/Å)")]
        ):
            ax = axes[row, column]
            for source, color, marker in [("reference", "black", "x"), ("model", "C0", "o")]:
                series = [p[source][key][1:] for p in rows if key in p.get(source, {})]
                if not series:
                    continue
                for values in series:
                    ax.plot(range(2, len(values) + 2), values, marker, color=color, alpha=0.2, ms=3)
                stats = report[source]["groups"][group]["orders"]
                orders = [int(m) for m in stats if key in stats[m]]
                ax.plot(
                    orders,
                    [stats[str(m)][key]["mean"] for m in orders],
                    marker,
                    color=color,
                    ms=9,
                    mec="k",
                    label=f"{source} mean",
                )
            ax.axhline(0, color="grey", lw=0.5)
            ax.set_xlabel("body order m")
            ax.set_ylabel(label)
            if row == 0:
                ax.set_title(f"{group} ({len(rows)} parents)")
                ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _rmse(plt, report: dict):
    if "rmse" not in report:
        return None
    orders = [int(m) for m in report["rmse"]]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, (key, label) in zip(
        axes, [("energy_per_atom", "energy RMSE (eV/atom)"), ("forces", "force RMSE (eV/Å)")]
    ):
        values = [report["rmse"][str(m)].get(key, float("nan")) for m in orders]
        ax.plot(orders, values, "x-")
        ax.set_xlabel("sub-cluster size m")
        ax.set_ylabel(label)
        ax.set_yscale("log")
    figure.tight_layout()
    return figure


def _baselines(plt, report: dict):
    v_tilde = report["baselines"]["V_tilde"]
    figure, axes = plt.subplots(1, len(v_tilde), figsize=(4.5 * len(v_tilde), 3.5), squeeze=False)
    for ax, (source, by_baseline) in zip(axes[0], v_tilde.items()):
        for name, values in by_baseline.items():
            orders = [int(m) for m in values]
            ax.plot(orders, list(values.values()), "o-", label=f"{name} E_1")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(source)
        ax.set_xlabel("body order m")
        ax.set_ylabel("mean Ṽ^(m) (eV/atom)")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _dimers(plt, report: dict):
    dimers = report["dimers"]
    if not dimers:
        return None
    figure, axes = plt.subplots(1, len(dimers), figsize=(4.5 * len(dimers), 3.5), squeeze=False)
    for ax, (name, data) in zip(axes[0], dimers.items()):
        ax.plot(data["grid"]["r"], data["grid"]["model"], "-", color="C0", label="model")
        if data.get("r"):
            ax.plot(data["r"], data["reference"], "x", color="k", label="reference dimers")
            ax.plot(data["r"], data["model"], ".", color="C0", ms=3, label="model, same dimers")
            low = min(min(data["reference"]), min(data["model"]))
            high = max(max(data["reference"]), max(data["model"]))
            span = high - low or 1.0
            ax.set_ylim(low - 0.3 * span, high + 0.3 * span)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(name)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("V^(2) (eV)")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _soap(plt, report: dict):
    if "soap_distance" not in report:
        return None
    data = report["soap_distance"]["orders"]
    orders = [int(m) for m in data]
    figure, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(orders, [data[str(m)]["mean"] for m in orders], "o-", label="mean")
    ax.plot(orders, [data[str(m)]["max"] for m in orders], "v--", label="max")
    ax.set_xlabel("sub-cluster size m")
    ax.set_ylabel("SOAP distance to nearest training structure")
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
