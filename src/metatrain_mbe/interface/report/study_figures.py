"""The study figures of the paper's Fig. 5 and Fig. 6 (matplotlib's pyplot
passed in, files written as PNG).

Units: Ṽ^(m) in eV per body (``unit``), |dṼ^(m)/dr| in eV/Å, energy RMSE in
eV/atom, force RMSE in eV/Å; error bars are standard deviations over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["dataset_figure", "extrapolation_figure"]

#: the quantities of the body-order panels and their axis labels
_TERMS = (("V_tilde", "Ṽ$^{{(m)}}$ ({unit})"), ("dV_tilde", "|dṼ$^{{(m)}}$/dr| (eV/Å)"))


def dataset_figure(plt, path: Path, points: list[dict], unit: str) -> str:
    """Fig. 5: Ṽ^(m) and |dṼ^(m)/dr| (log scale) against the dataset
    proportion, one line per order m (the reference of the same colour dashed,
    flat: the judged parents are the same at every dataset proportion); rows
    architectures, columns parent groups.

    :param points: the points of one composition and one augmentation proportion.
    :return: the file name.
    """
    archs = sorted({p["architecture"] for p in points})
    groups = sorted({g for p in points for g in p.get("groups", {})})
    fig, axes = plt.subplots(
        len(archs),
        2 * len(groups),
        squeeze=False,
        figsize=(3.2 * 2 * len(groups), 2.6 * len(archs)),
    )
    for row, arch in enumerate(archs):
        series = sorted(
            (p for p in points if p["architecture"] == arch), key=lambda p: p["dataset_proportion"]
        )
        x = [p["dataset_proportion"] for p in series]
        for col, (group, (quantity, label)) in enumerate((g, t) for g in groups for t in _TERMS):
            ax = axes[row, col]
            reference: dict = next(
                (
                    p["groups"][group]["reference"][quantity]
                    for p in series
                    if quantity in p.get("groups", {}).get(group, {}).get("reference", {})
                ),
                {},
            )
            orders = sorted(reference, key=int)
            colours = plt.cm.viridis(
                [0.85 * k / max(1, len(orders) - 1) for k in range(len(orders))]
            )
            for order, colour in zip(orders, colours):
                stats = [
                    p.get("groups", {}).get(group, {}).get("model", {}).get(quantity, {}).get(order)
                    for p in series
                ]
                ax.errorbar(
                    x,
                    [s["mean"] if s else math.nan for s in stats],
                    yerr=[s["std"] if s else 0.0 for s in stats],
                    color=colour,
                    marker="o",
                    ms=3,
                    capsize=2,
                    label=f"m = {order}",
                )
                ax.axhline(reference[order]["mean"], color=colour, ls="--", lw=0.8)
            ax.set_xscale("log")
            if quantity == "dV_tilde":
                ax.set_yscale("log")
            ax.set_title(f"{arch}, {group}", fontsize=9)
            ax.set_xlabel("dataset proportion")
            ax.set_ylabel(label.format(unit=unit), fontsize=8)
    axes[0, -1].legend(title="model; reference dashed", fontsize=7, title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def extrapolation_figure(
    plt, path: Path, points: list[dict], compositions: dict[str, dict], axis: str
) -> str:
    """Fig. 6: energy (top) and force (bottom) RMSE on the extrapolation
    groups against the group's value (e.g. the density), one column per
    training composition, one colour per architecture; circles without
    sub-clusters (proportion 0), crosses with; dotted lines where the
    composition's training parents lie (when known).

    :param points: the points with ``extrapolation`` RMSEs at one dataset proportion.
    :param compositions: name -> ``{"training_values": [...]}``, in the study's order.
    :param axis: the info key of the groups (the x axis' label).
    :return: the file name.
    """
    names = [n for n in compositions if any(p["composition"] == n for p in points)]
    archs = sorted({p["architecture"] for p in points})
    labels = sorted({g for p in points for g in p["extrapolation"]}, key=_position_key)
    numeric = all(math.isfinite(_number(g)) for g in labels)
    position = {g: _number(g) if numeric else float(k) for k, g in enumerate(labels)}
    fig, axes = plt.subplots(
        2, len(names), squeeze=False, sharex=True, figsize=(3.4 * len(names), 5.4)
    )
    for col, name in enumerate(names):
        for k, arch in enumerate(archs):
            rows = sorted(
                (p for p in points if p["composition"] == name and p["architecture"] == arch),
                key=lambda p: p["proportion"],
            )
            for point in rows:
                groups = sorted(point["extrapolation"], key=_position_key)
                without = point["proportion"] == 0.0
                for row, quantity in enumerate(("energy_per_atom", "forces")):
                    stats = [point["extrapolation"][g].get(quantity, {}) for g in groups]
                    axes[row, col].errorbar(
                        [position[g] for g in groups],
                        [s.get("mean", math.nan) for s in stats],
                        yerr=[s.get("std", 0.0) for s in stats],
                        color=f"C{k}",
                        marker="o" if without else "x",
                        mfc="none" if without else None,
                        ls="-" if without else "--",
                        capsize=2,
                        label=f"{arch}, proportion {point['proportion']:g}",
                    )
        for row in range(2):
            ax = axes[row, col]
            if numeric:
                for value in compositions[name].get("training_values", []):
                    ax.axvline(value, color="grey", ls=":", lw=1)
            ax.set_yscale("log")
        axes[0, col].set_title(f"trained on {name}", fontsize=9)
        axes[1, col].set_xlabel(axis)
    axes[0, 0].set_ylabel("energy RMSE (eV/atom)")
    axes[1, 0].set_ylabel("force RMSE (eV/Å)")
    if not numeric:
        axes[1, 0].set_xticks(list(position.values()), labels)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 6), fontsize=7)
    fig.tight_layout(rect=(0, 0.05 * math.ceil(len(names) / 6), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _number(label: str) -> float:
    try:
        return float(label)
    except ValueError:
        return math.nan


def _position_key(label: str) -> tuple:
    """Numbers by value, then other labels by name."""
    number = _number(label)
    return (0, number, "") if math.isfinite(number) else (1, 0.0, label)
