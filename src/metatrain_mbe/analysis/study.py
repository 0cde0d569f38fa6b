"""What a study of many training runs shows: statistics over seeds and the
paper's findings, checked with numbers.

A *run record* is the summary of one ``mtt-mbe train`` run of a study (the
content of its ``run.json``): the architecture, the training composition (the
subset of the training parents it was trained on, ``"all"`` by default), the
augmentation proportion (fraction of the labelled sub-cluster sets injected),
the dataset proportion (fraction of the training parents used), the seed, and
what the run measured on the study's shared test parents:

- ``rmse``: full-structure energy (eV/atom) and force (eV/Å) RMSE;
- ``order_rmse``: per-order RMSE on the labelled sub-clusters, ``{m: {"energy_per_atom",
  "forces", "n_subclusters"}}``;
- ``e1``: the model's and the reference isolated-atom energies (eV by symbol)
  and, for a model whose E_1 was calibrated after training (``mbe.fix_e1`` for
  PET), ``trained``: its E_1 before the calibration;
- ``groups``: per parent group (``"all"`` and e.g. each density regime),
  ``{"model" | "reference": {"V_tilde" | "dV_tilde": {m: mean over parents}}}``,
  Ṽ^(m) in eV/atom (the model's terms with the reference E_1) and |dṼ^(m)/dr| in
  eV/Å;
- ``extrapolation``: per group of the extrapolation structures (e.g. each
  density), ``{"energy_per_atom", "forces", "n_structures"}``: full-structure
  energy (eV/atom) and force (eV/Å) RMSE on labelled parents outside the split.

:func:`aggregate` turns records into mean ± standard deviation over seeds per
(architecture, composition, proportion, dataset proportion); :func:`findings`
(the paper's Fig. 3-4), :func:`dataset_findings` (Fig. 5) and
:func:`extrapolation_findings` (Fig. 6) state each of the paper's findings and
whether the study reproduces it.

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
    "CONVERGING",
    "FAR",
    "GROWS",
    "MUCH_BETTER",
    "PINNED",
    "RESOLVED",
    "TREND",
    "aggregate",
    "convergence_ratio",
    "dataset_findings",
    "deviation",
    "extrapolation_findings",
    "findings",
    "full_structure_rmse",
    "grouped_rmse",
    "judged_groups",
    "resolved_orders",
    "run_record",
    "spearman",
]

#: relative deviation |model - reference| / |reference| under which an order
#: counts as resolved (the paper's "near-complete resolution")
RESOLVED = 0.15
#: relative deviation above which an order counts as far from the reference
FAR = 0.5

#: ratio of an effective expansion's mean |dṼ^(m)/dr| over the upper half of its
#: orders to that over the lower half at or under which it converges (the paper's
#: "fast-converging", low orders prioritised)
CONVERGING = 0.25
#: relative spread (max - min) / |mean| over the dataset proportions at or under
#: which a term is pinned
PINNED = 0.2
#: factor from the smallest to the largest dataset proportion at or above which
#: a term grows with the data (geometric mean over the orders judged)
GROWS = 1.25
#: Spearman rank correlation between an RMSE and the distance from the training
#: regime at or above which the error grows away from that regime
TREND = 0.5
#: ratio of the out-of-distribution energy RMSE with sub-clusters to that without
#: under which a model extrapolates much better
MUCH_BETTER = 0.5

#: the axes that identify a point of a study (seeds are averaged over)
POINT_KEYS = ("architecture", "composition", "proportion", "dataset_proportion")


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

    :param records: run records (see the module docstring; one without a
        ``composition`` is of the composition ``"all"``).
    :return: one point per (architecture, composition, proportion, dataset
        proportion), sorted, with ``n_seeds``, ``seeds`` and, for ``rmse``,
        ``order_rmse``, ``e1``, ``groups`` and ``extrapolation``, the nesting of the
        records with ``{"mean", "std", "n"}`` leaves.
    """
    points: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        record = {"composition": "all", **record}
        points[tuple(record[key] for key in POINT_KEYS)].append(record)
    out = []
    for key in sorted(points):
        members = sorted(points[key], key=lambda r: r["seed"])
        point = dict(zip(POINT_KEYS, key))
        point["n_seeds"] = len(members)
        point["seeds"] = [r["seed"] for r in members]
        for section in ("rmse", "order_rmse", "e1", "groups", "extrapolation"):
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


#: how the findings name an architecture family
_FAMILY_NAMES = {"mace": "MACE", "pet": "PET", "soap_bpnn": "SOAP-BPNN"}


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (ties share their mean
    rank); NaN for fewer than three pairs or a constant series.

    >>> spearman([1, 2, 3, 4], [10, 20, 15, 40])
    0.8
    """
    if len(x) < 3:
        return float("nan")
    rx, ry = (_ranks(np.asarray(v, dtype=np.float64)) for v in (x, y))
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return round(float(np.corrcoef(rx, ry)[0, 1]), 12)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties at their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def _model_terms(point: dict, group: str, quantity: str) -> list[float]:
    """The point's mean model ``quantity`` per order m >= 2, in order of m."""
    series = point.get("groups", {}).get(group, {}).get("model", {}).get(quantity, {})
    return [series[o]["mean"] for o in sorted(series, key=_order_key) if int(o) >= 2]


def convergence_ratio(point: dict, group: str = "all") -> float:
    """How fast a model's effective expansion converges: the mean |dṼ^(m)/dr|
    (eV/Å) over the upper half of its orders m >= 2 divided by that over the
    lower half (the lower half holds ``n // 2`` of the ``n`` orders); at or under
    :data:`CONVERGING` it converges. NaN when not measured."""
    terms = np.abs(_model_terms(point, group, "dV_tilde"))
    half = len(terms) // 2
    if not half or not terms[:half].mean():
        return float("nan")
    return float(terms[half:].mean() / terms[:half].mean())


def _growth(first: dict, last: dict, group: str, upper_half: bool) -> float:
    """Geometric mean over orders of |dṼ^(m)/dr| at ``last`` over that at
    ``first``: the orders m >= 3, or the upper half of the orders."""
    before = np.abs(_model_terms(first, group, "dV_tilde"))
    after = np.abs(_model_terms(last, group, "dV_tilde"))
    if len(before) != len(after) or len(before) < 2:
        return float("nan")
    judged = slice(len(before) // 2, None) if upper_half else slice(1, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = after[judged] / before[judged]
    if not np.all(np.isfinite(ratios) & (ratios > 0)):
        return float("nan")
    return float(np.exp(np.mean(np.log(ratios))))


def _judged(
    claim: str,
    problem: str | None,
    series: dict[str, list[dict]],
    families: dict[str, str],
    family: str,
    judge,
) -> dict:
    """A finding on every architecture of ``family``: ``judge(points)`` gives
    (holds or None, evidence) for the points of one architecture; the finding
    holds when it holds for every one, cannot tell when the study has none or
    one could not be judged."""
    archs = [arch for arch in sorted(series) if families.get(arch) == family]
    if problem is None and not archs:
        problem = f"the study has no {_FAMILY_NAMES[family]}"
    if problem is not None:
        return {"claim": claim, "holds": None, "evidence": problem}
    verdicts = [judge(series[arch]) for arch in archs]
    holds = None if any(h is None for h, _ in verdicts) else all(h for h, _ in verdicts)
    evidence = "; ".join(f"{arch}: {text}" for arch, (_, text) in zip(archs, verdicts))
    return {"claim": claim, "holds": holds, "evidence": evidence}


def _ratios_text(points: list[dict], group: str) -> str:
    ratios = ", ".join(f"{convergence_ratio(p, group):.2f}" for p in points)
    datasets = ", ".join(f"{p['dataset_proportion']:g}" for p in points)
    return f"upper/lower-half |dṼ/dr| ratio {ratios} at dataset proportions {datasets}"


def dataset_findings(
    points: list[dict], families: dict[str, str], group: str = "all", high_group: str = "high"
) -> list[dict]:
    """The paper's findings on the dataset size (its Fig. 5), each with
    ``claim``, ``holds`` (True, False or None when the study cannot tell) and
    ``evidence``; judged on the points without sub-clusters (proportion 0) of
    one composition, in parent group ``group``. The study cannot tell without
    proportion 0, with one dataset proportion, or without the architecture.

    *Converging* is :func:`convergence_ratio` <= :data:`CONVERGING`; a term
    *grows with the data* when its |dṼ^(m)/dr| at the largest dataset proportion
    over that at the smallest is >= :data:`GROWS` (geometric mean over the
    orders judged); Ṽ^(2) is *pinned* when its spread (max - min) / |mean| over
    the dataset proportions is <= :data:`PINNED`.

    1. MACE converges at every dataset proportion.
    2. SOAP-BPNN converges at the smallest dataset proportion.
    3. SOAP-BPNN's Ṽ^(2) is pinned.
    4. SOAP-BPNN's |dṼ^(m)/dr| for m >= 3 grows with the data in parent group
       ``high_group`` (the paper's high density).
    5. PET converges at no dataset proportion.
    6. PET's |dṼ^(m)/dr| of the upper half of the orders grows with the data.

    :param points: the points of one composition (:func:`aggregate`).
    :param families: the family of each architecture (see :func:`findings`).
    """
    zero = sorted(
        (p for p in points if p["proportion"] == 0.0), key=lambda p: p["dataset_proportion"]
    )
    problem = None
    if not zero:
        problem = "the study has no proportion 0"
    elif len({p["dataset_proportion"] for p in zero}) < 2:
        problem = "the study has one dataset proportion"
    series: dict[str, list[dict]] = defaultdict(list)
    for point in zero:
        series[point["architecture"]].append(point)

    def converges(points: list[dict]) -> tuple[bool | None, str]:
        ratios = [convergence_ratio(p, group) for p in points]
        judged = None if not all(map(math.isfinite, ratios)) else max(ratios) <= CONVERGING
        return judged, _ratios_text(points, group)

    def converges_first(points: list[dict]) -> tuple[bool | None, str]:
        ratio = convergence_ratio(points[0], group)
        text = _ratios_text(points[:1], group)
        return (ratio <= CONVERGING if math.isfinite(ratio) else None), text

    def pinned(points: list[dict]) -> tuple[bool | None, str]:
        values = [(_model_terms(p, group, "V_tilde") or [math.nan])[0] for p in points]
        if not all(map(math.isfinite, values)) or not np.mean(values):
            return None, "Ṽ^(2) not measured"
        spread = (max(values) - min(values)) / abs(float(np.mean(values)))
        text = f"Ṽ^(2) {', '.join(f'{v:.3g}' for v in values)} (spread {_fmt(spread)})"
        return spread <= PINNED, text

    def grows(points: list[dict], where: str, upper_half: bool) -> tuple[bool | None, str]:
        if where not in points[0].get("groups", {}):
            return None, f"no parent group '{where}'"
        factor = _growth(points[0], points[-1], where, upper_half)
        orders = "upper half of the orders" if upper_half else "m >= 3"
        text = (
            f"|dṼ/dr| ({orders}, {where}) x{factor:.2f} from dataset proportion "
            f"{points[0]['dataset_proportion']:g} to {points[-1]['dataset_proportion']:g}"
        )
        return (factor >= GROWS if math.isfinite(factor) else None), text

    def never_converges(points: list[dict]) -> tuple[bool | None, str]:
        ratios = [convergence_ratio(p, group) for p in points]
        judged = None if not all(map(math.isfinite, ratios)) else min(ratios) > CONVERGING
        return judged, _ratios_text(points, group)

    checks = [
        (
            "MACE keeps a fast-converging effective expansion at every dataset size",
            "mace",
            converges,
        ),
        (
            "SOAP-BPNN's effective expansion converges at the smallest dataset size",
            "soap_bpnn",
            converges_first,
        ),
        ("SOAP-BPNN keeps Ṽ^(2) pinned as the data grows", "soap_bpnn", pinned),
        (
            "SOAP-BPNN's high-density contributions for 3 <= m <= 8 grow with the data",
            "soap_bpnn",
            lambda points: grows(points, high_group, upper_half=False),
        ),
        ("PET shows no converging trend at any dataset size", "pet", never_converges),
        (
            "PET's high-m |dṼ/dr| grows with the data",
            "pet",
            lambda points: grows(points, group, upper_half=True),
        ),
    ]
    return [
        _judged(claim, problem, series, families, family, judge) for claim, family, judge in checks
    ]


def _ood(point: dict, quantity: str = "energy_per_atom") -> float:
    """A point's RMSE (mean over seeds) averaged over the extrapolation groups."""
    values = [g[quantity]["mean"] for g in point.get("extrapolation", {}).values() if quantity in g]
    return float(np.mean(values)) if values else float("nan")


def extrapolation_findings(
    points: list[dict], families: dict[str, str], compositions: dict[str, dict]
) -> list[dict]:
    """The paper's findings out of distribution (its Fig. 6), as
    :func:`findings` states them, on the points with extrapolation RMSEs at the
    largest dataset proportion. The *out-of-distribution RMSE* of a point is
    its energy RMSE (eV/atom, mean over seeds) averaged over the extrapolation
    groups; *with sub-clusters* is the largest proportion, *without* proportion 0.

    1. Errors grow away from the training regime: for every architecture and
       every composition whose training parents have a known place on the
       group axis (``training_values`` of ``compositions``), at proportion 0,
       the energy and the force RMSE of the (numeric) groups each have a
       Spearman correlation >= :data:`TREND` with the group's distance to the
       nearest training value (needs three groups).
    2. PET has the lowest out-of-distribution RMSE of the architectures for
       every composition, at proportion 0 (the paper: 0.0061 eV/atom trained on
       both densities).
    3. Sub-clusters degrade MACE: its out-of-distribution RMSE, averaged over
       the compositions, is higher with sub-clusters than without.
    4. Sub-clusters help PET slightly: with over without is in
       [:data:`MUCH_BETTER`, 1).
    5. Sub-clusters make no model extrapolate much better: with over without is
       >= :data:`MUCH_BETTER` for every architecture.

    :param compositions: name -> ``{"training_values": [...]}`` (where its
        training parents lie on the group axis; empty when unknown).
    """
    measured = [p for p in points if p.get("extrapolation")]
    largest = max((p["dataset_proportion"] for p in measured), default=1.0)
    measured = [p for p in measured if p["dataset_proportion"] == largest]
    proportions = sorted({p["proportion"] for p in measured})
    problem = None
    if not measured:
        problem = "the study has no extrapolation files"
    elif proportions[0] != 0.0:
        problem = "the study has no proportion 0"
    at: dict[tuple, dict[str, dict]] = defaultdict(dict)  # (arch, proportion) -> name -> point
    for point in measured:
        at[point["architecture"], point["proportion"]][point["composition"]] = point
    archs = sorted({p["architecture"] for p in measured})
    zero = {arch: at[arch, 0.0] for arch in archs}
    return [
        _grows_away(zero, compositions, problem),
        _pet_lowest(zero, families, problem),
        *_with_and_without(at, archs, proportions, families, problem),
    ]


def _grows_away(zero: dict[str, dict], compositions: dict[str, dict], problem) -> dict:
    claim = "Errors grow away from the training regime (Fig. 6)"
    placed = {n: c["training_values"] for n, c in compositions.items() if c.get("training_values")}
    if problem is None and not placed:
        problem = (
            "where the training parents lie on the extrapolation axis is unknown "
            "(extrapolation.training_values)"
        )
    if problem is not None:
        return {"claim": claim, "holds": None, "evidence": problem}
    lines, verdicts = [], []
    for arch in sorted(zero):
        for name, training in placed.items():
            point = zero[arch].get(name)
            if point is None:
                continue
            groups = {
                g: v for g, v in point["extrapolation"].items() if math.isfinite(_as_number(g))
            }
            distance = [min(abs(_as_number(g) - t) for t in training) for g in groups]
            rho = {
                q: spearman(distance, [v[q]["mean"] for v in groups.values()])
                for q in ("energy_per_atom", "forces")
                if all(q in v for v in groups.values())
            }
            verdicts += [r >= TREND if math.isfinite(r) else None for r in rho.values()]
            lines.append(
                f"{arch}, {name}: ρ(distance, RMSE) "
                + ", ".join(f"{q.split('_')[0]} {r:.2f}" for q, r in rho.items())
            )
    holds = None if not verdicts or None in verdicts else all(verdicts)
    return {"claim": claim, "holds": holds, "evidence": "; ".join(lines) or "no point"}


def _pet_lowest(zero: dict[str, dict], families: dict[str, str], problem) -> dict:
    claim = (
        "PET has the lowest out-of-distribution error (the paper: 0.0061 eV/atom trained "
        "on both densities)"
    )
    kinds = {families.get(arch) for arch in zero}
    if problem is None and ("pet" not in kinds or len(kinds) < 2):
        problem = "needs PET and another architecture"
    if problem is not None:
        return {"claim": claim, "holds": None, "evidence": problem}
    lines, holds = [], True
    names = sorted({name for by_name in zero.values() for name in by_name})
    for name in names:
        rmse = {arch: _ood(zero[arch][name]) for arch in sorted(zero) if name in zero[arch]}
        pet = [v for arch, v in rmse.items() if families.get(arch) == "pet"]
        others = [v for arch, v in rmse.items() if families.get(arch) != "pet"]
        holds &= bool(pet and others) and max(pet) < min(others)
        lines.append(f"{name}: " + ", ".join(f"{arch} {1000 * v:.1f}" for arch, v in rmse.items()))
    return {"claim": claim, "holds": bool(holds), "evidence": "; ".join(lines) + " meV/atom"}


def _with_and_without(at, archs, proportions, families, problem) -> list[dict]:
    """Findings 3-5 of :func:`extrapolation_findings`."""
    claims = [
        ("Sub-clusters degrade MACE out of distribution", "mace"),
        ("Sub-clusters help PET slightly out of distribution", "pet"),
        ("Sub-clusters make no model extrapolate much better", None),
    ]
    if problem is None and len(proportions) < 2:
        problem = "the study has no proportion > 0"
    if problem is not None:
        return [{"claim": c, "holds": None, "evidence": problem} for c, _ in claims]
    ratio, text = {}, {}
    for arch in archs:
        names = set(at[arch, 0.0]) & set(at[arch, proportions[-1]])
        before = np.mean([_ood(at[arch, 0.0][n]) for n in names]) if names else math.nan
        after = np.mean([_ood(at[arch, proportions[-1]][n]) for n in names]) if names else math.nan
        ratio[arch] = float(after / before)
        text[arch] = (
            f"{arch}: {1000 * before:.1f} -> {1000 * after:.1f} meV/atom (x{ratio[arch]:.2f})"
        )
    out: list[dict] = []
    for claim, family in claims:
        judged = [a for a in archs if family is None or families.get(a) == family]
        if not judged:  # a family the study lacks (it has architectures)
            missing = f"the study has no {_FAMILY_NAMES[str(family)]}"
            out.append({"claim": claim, "holds": None, "evidence": missing})
            continue
        values = [ratio[a] for a in judged]
        holds: bool | None
        if not all(map(math.isfinite, values)):
            holds = None
        elif family == "mace":
            holds = all(v > 1 for v in values)
        elif family == "pet":
            holds = all(MUCH_BETTER <= v < 1 for v in values)
        else:
            holds = all(v >= MUCH_BETTER for v in values)
        out.append({"claim": claim, "holds": holds, "evidence": "; ".join(text[a] for a in judged)})
    return out


def run_record(
    identity: dict,
    directory: Path,
    extrapolation: list[str] | tuple[str, ...] = (),
    group_by: str | None = None,
) -> dict:
    """What a finished ``mtt-mbe train`` run in ``directory`` measured (see the
    module docstring): read from its ``model_data/split.json``, its MBE report
    ``model_mbe/report.json`` (or the reports of ``evaluation/*/``, when the
    run analysed extra evaluation files), the model's full-structure RMSE on
    ``model_data/test.xyz`` and, given ``extrapolation`` files, on each of their
    groups (:func:`grouped_rmse`).

    :param identity: the run's axes (``architecture``, ``proportion``, ...),
        copied into the record.
    :param group_by: info key grouping the extrapolation structures.
    """
    split = json.loads((directory / "model_data" / "split.json").read_text())
    report = json.loads((directory / "model_mbe" / "report.json").read_text())
    judged = [
        json.loads(p.read_text()) for p in sorted((directory / "evaluation").glob("*/report.json"))
    ] or [report]
    model, extensions = directory / "model.pt", directory / "extensions"
    record = {
        **identity,
        "test_parents": split["test_parents"],
        "analysed_parents": [p for r in judged for p in r["model"]["parents"]],
        "injected_subclusters": split["injected_subclusters"],
        "injected_fraction": split["injected_fraction"],
        "n_train_parents": len(split["train_parents"]),
        "rmse": full_structure_rmse(model, extensions, directory / "model_data" / "test.xyz"),
        "order_rmse": report.get("rmse", {}),
        "e1": {**report["baselines"]["e1"], **_trained_e1(directory / "model_data")},
        "v_tilde_unit": report["units"]["V_tilde"],
        "groups": judged_groups(judged),
    }
    if extrapolation:
        record["extrapolation"] = grouped_rmse(
            model, extensions, [Path(f) for f in extrapolation], group_by
        )
    return record


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
    from ..data import read_structures

    frames = read_structures(structures)
    return _rmse(_errors(model, extensions, frames, batch_size))


def grouped_rmse(
    model: Path,
    extensions: Path,
    files: list[Path],
    group_by: str | None,
    batch_size: int = 64,
) -> dict[str, dict]:
    """:func:`full_structure_rmse` of the structures of ``files`` per value of
    their ``group_by`` info key (a number written as ``f"{value:g}"``, e.g.
    ``"0.72"``; one group ``"all"`` when None), groups sorted by value.

    :return: ``{group: {"n_structures", "energy_per_atom" (eV/atom), "forces" (eV/Å)}}``.
    """
    from ..data import read_structures

    frames = [atoms for path in files for atoms in read_structures(path)]
    errors = _errors(model, extensions, frames, batch_size)
    groups: dict[str, list] = defaultdict(list)
    for atoms, error in zip(frames, errors, strict=True):
        groups["all" if group_by is None else _group_label(atoms.info[group_by])].append(error)
    return {group: _rmse(groups[group]) for group in sorted(groups, key=_numeric_first)}


def _group_label(value) -> str:
    """The name of a group: a number as ``f"{value:g}"``, anything else as text."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _numeric_first(label: str) -> tuple:
    """Sort groups by their number, those that are not numbers after, by name."""
    number = _as_number(label)
    return (0, number, "") if math.isfinite(number) else (1, 0.0, label)


def _as_number(label: str) -> float:
    try:
        return float(label)
    except ValueError:
        return math.nan


def _errors(
    model: Path, extensions: Path, frames: list, batch_size: int
) -> list[tuple[float, np.ndarray | None]]:
    """Per structure: the energy error per atom (eV/atom) and the force errors
    (eV/Å, None without reference forces) of the model."""
    import torch
    from metatomic_ase import MetatomicCalculator

    from ..compute.evaluator import load_model
    from ..data.io import ENERGY_KEY, FORCES_KEY, get_energy, get_forces

    calculator = MetatomicCalculator(load_model(model, extensions), check_consistency=False)
    errors = []
    for start in range(0, len(frames), batch_size):
        batch = frames[start : start + batch_size]
        with torch.jit.optimized_execution(False):
            predicted = calculator.compute_energy(batch, compute_forces_and_stresses=True)
        for atoms, energy, forces in zip(
            batch, predicted["energy"], predicted["forces"], strict=True
        ):
            reference_f = get_forces(atoms, FORCES_KEY)
            errors.append(
                (
                    (energy - get_energy(atoms, ENERGY_KEY)) / len(atoms),
                    None if reference_f is None else forces - reference_f,
                )
            )
    return errors


def _rmse(errors: list[tuple[float, np.ndarray | None]]) -> dict:
    """``{"n_structures", "energy_per_atom", "forces"}`` RMSE of :func:`_errors`
    (``forces`` when some structure has reference forces)."""
    rmse = {
        "n_structures": len(errors),
        "energy_per_atom": float(np.sqrt(np.mean(np.square([e for e, _ in errors])))),
    }
    forces = [f for _, f in errors if f is not None]
    if forces:
        rmse["forces"] = float(np.sqrt(np.mean(np.square(np.concatenate(forces)))))
    return rmse
