"""What a study of many training runs shows: statistics over seeds and the
paper's findings, checked with numbers.

A *run record* is the summary of one ``mtt-mbe train`` run of a study (the
content of its ``run.json``): the architecture, the augmentation proportion
(fraction of the labelled sub-cluster sets injected), the dataset proportion
(fraction of the training parents used), the seed, and what the run measured on
the study's shared test parents:

- ``rmse``: full-structure energy (eV/atom) and force (eV/Å) RMSE;
- ``order_rmse``: per-order RMSE on the labelled sub-clusters, ``{m: {"energy_per_atom",
  "forces", "n_subclusters"}}``;
- ``e1``: the model's and the reference isolated-atom energies (eV by symbol)
  and, for a model whose E_1 was calibrated after training (``mbe.fix_e1`` for
  PET), ``trained``: its E_1 before the calibration;
- ``groups``: per parent group (``"all"`` and e.g. each density regime),
  ``{"model" | "reference": {"V_tilde" | "dV_tilde": {m: mean over parents}}}``,
  Ṽ^(m) in eV/atom (the model's terms with the reference E_1) and |dṼ^(m)/dr| in
  eV/Å.

:func:`aggregate` turns records into mean ± standard deviation over seeds per
(architecture, proportion, dataset proportion); :func:`findings` states each
of the paper's findings and whether the study reproduces it.

>>> records = [
...     {"architecture": "a", "proportion": 0.0, "dataset_proportion": 1.0, "seed": s,
...      "rmse": {"energy_per_atom": 0.1 + 0.1 * s, "forces": 1.0}}
...     for s in (0, 1)
... ]
>>> point = aggregate(records)[0]
>>> point["n_seeds"], round(point["rmse"]["energy_per_atom"]["mean"], 3)
(2, 0.15)
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = [
    "FAR",
    "RESOLVED",
    "aggregate",
    "deviation",
    "findings",
    "full_structure_rmse",
    "judged_groups",
    "resolved_orders",
    "run_record",
]

#: relative deviation |model - reference| / |reference| under which an order
#: counts as resolved (the paper's "near-complete resolution")
RESOLVED = 0.15
#: relative deviation above which an order counts as far from the reference
FAR = 0.5

#: the axes that identify a point of a study (seeds are averaged over)
POINT_KEYS = ("architecture", "proportion", "dataset_proportion")


def _mean_std(values: list[float]) -> dict[str, float]:
    """Mean and (population) standard deviation, NaN-free values only."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    array = np.asarray(finite, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "n": len(finite)}


def _nested_stats(dicts: list[dict]) -> dict:
    """Mean ± std over ``dicts`` of every numeric leaf (same nesting)."""
    keys = sorted({k for d in dicts for k in d}, key=_order_key)
    out = {}
    for key in keys:
        values = [d[key] for d in dicts if key in d]
        if all(isinstance(v, dict) for v in values):
            out[key] = _nested_stats(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = _mean_std([float(v) for v in values])
    return out


def _order_key(key: str):
    """Sort body orders numerically and other keys by name."""
    return (0, int(key), "") if str(key).isdigit() else (1, 0, str(key))


def aggregate(records: list[dict]) -> list[dict]:
    """Mean ± standard deviation over seeds of every measured number.

    :param records: run records (see the module docstring).
    :return: one point per (architecture, proportion, dataset proportion), sorted,
        with ``n_seeds``, ``seeds`` and, for ``rmse``, ``order_rmse``, ``e1`` and
        ``groups``, the nesting of the records with ``{"mean", "std", "n"}`` leaves.
    """
    points: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        points[tuple(record[key] for key in POINT_KEYS)].append(record)
    out = []
    for key in sorted(points):
        members = sorted(points[key], key=lambda r: r["seed"])
        point = dict(zip(POINT_KEYS, key))
        point["n_seeds"] = len(members)
        point["seeds"] = [r["seed"] for r in members]
        for section in ("rmse", "order_rmse", "e1", "groups"):
            present = [r[section] for r in members if r.get(section)]
            if present:
                point[section] = _nested_stats(present)
        out.append(point)
    return out


def deviation(point: dict, group: str, quantity: str, order: str) -> float:
    """Relative deviation |model - reference| / |reference| of a point's mean
    ``quantity`` (``V_tilde`` or ``dV_tilde``) at body order ``order`` (NaN when
    not measured)."""
    try:
        model = point["groups"][group]["model"][quantity][order]["mean"]
        reference = point["groups"][group]["reference"][quantity][order]["mean"]
    except KeyError:
        return float("nan")
    return abs(model - reference) / abs(reference) if reference else float("nan")


def _orders(point: dict, group: str) -> list[str]:
    try:
        return sorted(point["groups"][group]["reference"]["V_tilde"], key=_order_key)
    except KeyError:
        return []


def resolved_orders(point: dict, group: str, quantity: str = "dV_tilde") -> int:
    """The largest m such that every order 2..m is within :data:`RESOLVED` of
    the reference (1 when not even m = 2 is)."""
    resolved = 1
    for order in _orders(point, group):
        if not deviation(point, group, quantity, order) <= RESOLVED:
            break
        resolved = int(order)
    return resolved


def _fmt(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.0f} %"


def _points_at(points: list[dict], proportion: float) -> dict[str, dict]:
    """The points at augmentation ``proportion`` (full data set), by architecture."""
    return {
        p["architecture"]: p
        for p in points
        if p["proportion"] == proportion
        and p["dataset_proportion"] == max(q["dataset_proportion"] for q in points)
    }


def findings(points: list[dict], families: dict[str, str], group: str = "all") -> list[dict]:
    """The paper's findings on augmentation, each with ``claim``, ``holds``
    (True, False or None when the study cannot tell) and ``evidence`` (text with
    the numbers).

    :param families: the family of each architecture of the points
        (:func:`metatrain_mbe.compute.architectures.family` of its metatrain
        name: ``soap_bpnn``, ``pet``, ``mace``), which findings 3 and 5 compare.

    1. Without sub-clusters every model's Ṽ^(m) is far (> :data:`FAR`) from the
       reference for some m >= 3, and its |dṼ^(m)/dr| too.
    2. With augmentation the low orders are resolved first: the deviation
       grows with m at the largest proportion.
    3. PET and MACE resolve more orders than SOAP-BPNN at the largest proportion.
    4. The per-order sub-cluster RMSE falls as sub-clusters are added.
    5. The full-structure RMSE rises with augmentation for SOAP-BPNN and MACE
       and ends lower for PET (the paper's Fig. 4).
    """
    proportions = sorted({p["proportion"] for p in points})
    lowest, highest = proportions[0], proportions[-1]
    first, last = _points_at(points, lowest), _points_at(points, highest)
    return [
        _far_without(first, lowest, group),
        _low_orders_first(last, highest, group),
        _architectures_ranked(last, highest, group, families),
        _subcluster_rmse_falls(first, last, lowest, highest),
        _full_rmse_trend(first, last, lowest, highest, families),
    ]


def _far_without(first: dict[str, dict], proportion: float, group: str) -> dict:
    claim = (
        "Without sub-clusters every model's Ṽ^(m) and |dṼ^(m)/dr| are far from the "
        "reference for m >= 3"
    )
    if proportion != 0.0 or not first:
        return {"claim": claim, "holds": None, "evidence": "the study has no proportion 0"}
    lines, holds = [], True
    for arch, point in sorted(first.items()):
        orders = [o for o in _orders(point, group) if int(o) >= 3]
        worst_v = max((deviation(point, group, "V_tilde", o) for o in orders), default=math.nan)
        worst_f = max((deviation(point, group, "dV_tilde", o) for o in orders), default=math.nan)
        holds &= worst_v > FAR and worst_f > FAR
        lines.append(f"{arch}: largest deviation Ṽ {_fmt(worst_v)}, |dṼ/dr| {_fmt(worst_f)}")
    return {"claim": claim, "holds": bool(holds), "evidence": "; ".join(lines)}


def _low_orders_first(last: dict[str, dict], proportion: float, group: str) -> dict:
    claim = f"With augmentation (proportion {proportion:g}) the low orders are resolved first"
    if proportion == 0.0 or not last:
        return {"claim": claim, "holds": None, "evidence": "the study has no proportion > 0"}
    lines, holds = [], True
    for arch, point in sorted(last.items()):
        devs = [deviation(point, group, "dV_tilde", o) for o in _orders(point, group)]
        devs = [d for d in devs if math.isfinite(d)]
        half = len(devs) // 2
        low, high = float(np.mean(devs[:half])), float(np.mean(devs[half:]))
        holds &= low < high
        lines.append(
            f"{arch}: mean |dṼ/dr| deviation {_fmt(low)} for the lower half of the orders, "
            f"{_fmt(high)} for the upper half"
        )
    return {"claim": claim, "holds": bool(holds), "evidence": "; ".join(lines)}


def _architectures_ranked(
    last: dict[str, dict], proportion: float, group: str, families: dict[str, str]
) -> dict:
    claim = "PET and MACE resolve more body orders than SOAP-BPNN with augmentation"
    names = {families[arch]: arch for arch in last}
    if proportion == 0.0 or "soap_bpnn" not in names or len(names) < 2:
        return {
            "claim": claim,
            "holds": None,
            "evidence": "needs SOAP-BPNN and another architecture at a proportion > 0",
        }
    counts = {arch: resolved_orders(point, group) for arch, point in last.items()}
    soap = counts[names["soap_bpnn"]]
    others = [counts[names[f]] for f in ("pet", "mace") if f in names]
    holds = bool(others) and all(c >= soap for c in others) and any(c > soap for c in others)
    evidence = (
        ", ".join(f"{arch} resolves m <= {count}" for arch, count in sorted(counts.items()))
        + f" (|dṼ/dr| within {RESOLVED:.0%} of the reference)"
    )
    return {"claim": claim, "holds": holds, "evidence": evidence}


def _mean_order_rmse(point: dict, quantity: str) -> float:
    values = [
        entry[quantity]["mean"]
        for order, entry in point.get("order_rmse", {}).items()
        if order not in ("1",) and quantity in entry
    ]
    values = [v for v in values if math.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _subcluster_rmse_falls(first, last, lowest: float, highest: float) -> dict:
    claim = "The sub-cluster RMSE falls as sub-clusters are added (Fig. 4, crosses)"
    if lowest == highest:
        return {"claim": claim, "holds": None, "evidence": "the study has one proportion"}
    lines, holds = [], True
    for arch in sorted(set(first) & set(last)):
        before = _mean_order_rmse(first[arch], "energy_per_atom")
        after = _mean_order_rmse(last[arch], "energy_per_atom")
        holds &= after < before
        lines.append(f"{arch}: {before:.3f} -> {after:.3f} eV/atom")
    return {"claim": claim, "holds": bool(holds), "evidence": "; ".join(lines)}


def _full_rmse_trend(first, last, lowest: float, highest: float, families: dict[str, str]) -> dict:
    claim = (
        "Full-structure RMSE rises with augmentation for SOAP-BPNN and MACE and ends "
        "lower for PET (Fig. 4, circles)"
    )
    if lowest == highest:
        return {"claim": claim, "holds": None, "evidence": "the study has one proportion"}
    lines, holds = [], True
    for arch in sorted(set(first) & set(last)):
        before = first[arch]["rmse"]["energy_per_atom"]["mean"]
        after = last[arch]["rmse"]["energy_per_atom"]["mean"]
        rises = after > before
        holds &= (not rises) if families[arch] == "pet" else rises
        lines.append(f"{arch}: {1000 * before:.1f} -> {1000 * after:.1f} meV/atom")
    return {"claim": claim, "holds": bool(holds), "evidence": "; ".join(lines)}


def run_record(identity: dict, directory: Path) -> dict:
    """What a finished ``mtt-mbe train`` run in ``directory`` measured (see the
    module docstring): read from its ``model_data/split.json``, its MBE report
    ``model_mbe/report.json`` (or the reports of ``evaluation/*/``, when the
    run analysed extra evaluation files) and the model's full-structure RMSE on
    ``model_data/test.xyz``.

    :param identity: the run's axes (``architecture``, ``proportion``, ...),
        copied into the record.
    """
    split = json.loads((directory / "model_data" / "split.json").read_text())
    report = json.loads((directory / "model_mbe" / "report.json").read_text())
    judged = [
        json.loads(p.read_text()) for p in sorted((directory / "evaluation").glob("*/report.json"))
    ] or [report]
    return {
        **identity,
        "test_parents": split["test_parents"],
        "analysed_parents": [p for r in judged for p in r["model"]["parents"]],
        "injected_subclusters": split["injected_subclusters"],
        "injected_fraction": split["injected_fraction"],
        "n_train_parents": len(split["train_parents"]),
        "rmse": full_structure_rmse(
            directory / "model.pt", directory / "extensions", directory / "model_data" / "test.xyz"
        ),
        "order_rmse": report.get("rmse", {}),
        "e1": {**report["baselines"]["e1"], **_trained_e1(directory / "model_data")},
        "v_tilde_unit": report["units"]["V_tilde"],
        "groups": judged_groups(judged),
    }


def _trained_e1(data: Path) -> dict:
    """``{"trained": E_1 by symbol}`` before the calibration of ``mbe.fix_e1``,
    when the run made one (``e1_calibration.json`` next to ``split.json``)."""
    path = data / "e1_calibration.json"
    if not path.exists():
        return {}
    return {"trained": {s: v["trained"] for s, v in json.loads(path.read_text()).items()}}


def judged_groups(reports: list[dict]) -> dict:
    """Per group: mean model (reference E_1) and reference Ṽ^(m), |dṼ^(m)/dr|."""
    out: dict[str, dict] = {}
    for report in reports:
        model = report.get("model_reference_e1", report["model"])
        for source, section in (("model", model), ("reference", report.get("reference"))):
            if section is None:
                continue
            for group, stats in section["groups"].items():
                entry = out.setdefault(group, {}).setdefault(source, {})
                for order, values in stats["orders"].items():
                    for quantity in ("V_tilde", "dV_tilde"):
                        if quantity in values:
                            entry.setdefault(quantity, {})[order] = values[quantity]["mean"]
    return out


def full_structure_rmse(
    model: Path, extensions: Path, structures: Path, batch_size: int = 64
) -> dict:
    """Energy (eV/atom) and force (eV/Å) RMSE of the model on labelled structures.

    The structures go through metatomic's ase calculator ``batch_size`` at a
    time (one model call and one backward pass per batch), without
    TorchScript's profiling optimisation, which costs more than it saves over
    a few calls.
    """
    import torch
    from metatomic_ase import MetatomicCalculator

    from ..compute.evaluator import load_model
    from ..data import read_structures
    from ..data.io import ENERGY_KEY, FORCES_KEY, get_energy, get_forces

    calculator = MetatomicCalculator(load_model(model, extensions), check_consistency=False)
    frames = read_structures(structures)
    errors_e, errors_f = [], []
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size]
        with torch.jit.optimized_execution(False):
            predicted = calculator.compute_energy(batch, compute_forces_and_stresses=True)
        for atoms, energy, forces in zip(
            batch, predicted["energy"], predicted["forces"], strict=True
        ):
            errors_e.append((energy - get_energy(atoms, ENERGY_KEY)) / len(atoms))
            reference_f = get_forces(atoms, FORCES_KEY)
            if reference_f is not None:
                errors_f.append(forces - reference_f)
    rmse = {
        "n_structures": len(frames),
        "energy_per_atom": float(np.sqrt(np.mean(np.square(errors_e)))),
    }
    if errors_f:
        rmse["forces"] = float(np.sqrt(np.mean(np.square(np.concatenate(errors_f)))))
    return rmse
