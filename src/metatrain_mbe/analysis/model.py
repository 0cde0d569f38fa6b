"""MBE analysis of a model: what it predicts, decomposed into body orders.

:func:`model_results` evaluates every sub-cluster of the chosen parents with an
:class:`~metatrain_mbe.compute.protocol.Evaluator` (batched model calls, or any
ase calculator) and Möbius-inverts E(S) into V(S), next to the reference set
where the frames label it; :func:`build_report` computes every number of
``report.json`` from those results. All analysis is float64 (energies eV,
gradients eV/Å, distances Å).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ase
import torch

from ..compute.protocol import Evaluator
from ..data import PARENT_KEY, SubclusterSet, parent_plan
from ..expansion import BodyOrderTerms, SubsetPlan
from . import diagnostics
from .settings import AnalysisSettings
from .statistics import statistics_section

__all__ = ["ParentResult", "build_report", "make_evaluator", "model_results", "parent_plans"]

LOGGER = logging.getLogger(__name__)


@dataclass
class ParentResult:
    """The model's sub-cluster energies and terms of one parent, with the
    reference set when the frames label it.

    :param energies: ``(plan.n_subsets,)`` model E(S) in eV.
    :param gradients: ``(n_rows, 3)`` model dE(S)/dr in eV/Å, in the plan's
        atom rows.
    :param total: the model's energy of the whole parent (eV): E(S) of the
        parent itself, evaluated apart when the plan does not hold it.
    """

    parent: ase.Atoms
    plan: SubsetPlan
    energies: torch.Tensor
    gradients: torch.Tensor
    terms: BodyOrderTerms
    total: float
    reference: SubclusterSet | None = None

    @property
    def parent_id(self) -> int:
        """The ``mbe_parent`` id."""
        return int(self.parent.info[PARENT_KEY])


def make_evaluator(
    model,
    settings: AnalysisSettings | None = None,
    extensions: str | Path | None = None,
    device: str | None = None,
) -> Evaluator:
    """An evaluator for ``model``: an exported metatomic model (path or loaded),
    an ase calculator, or an :class:`Evaluator` (returned as it is).

    :param settings: batch size and layout of a metatomic model's calls.
    """
    from ase.calculators.calculator import BaseCalculator

    from ..compute.ase_evaluator import CalculatorEvaluator
    from ..compute.evaluator import ModelEvaluator

    if isinstance(model, Evaluator):
        return model
    if isinstance(model, BaseCalculator):
        return CalculatorEvaluator(model)
    settings = settings or AnalysisSettings()
    return ModelEvaluator(
        model,
        extensions=extensions,
        device=device,
        batch_size=settings.subcluster_batch_size,
        strategy=settings.batch_layout,
    )


def parent_plans(parents: list[ase.Atoms], settings: AnalysisSettings) -> list[SubsetPlan]:
    """The (truncated, screened) plan of each parent: made before any model is
    loaded, so that a refused plan is a one-line error at once."""
    return [
        parent_plan(p, settings.max_order, settings.max_atoms, settings.cutoffs) for p in parents
    ]


def model_results(
    evaluator: Evaluator,
    parents: list[ase.Atoms],
    plans: list[SubsetPlan],
    references: dict[int, SubclusterSet] | None = None,
) -> list[ParentResult]:
    """Evaluate every sub-cluster of ``plans`` (one per parent, see
    :func:`parent_plans`) and Möbius-invert (float64).

    Parents whose plan does not hold them (truncated or screened) are also
    evaluated whole, one sub-cluster each, for the truncation error.
    """
    partial = [k for k, plan in enumerate(plans) if not plan.is_complete]
    wholes = [SubsetPlan.of_fragments([0] * len(parents[k]), 1) for k in partial]
    totals = {
        k: float(energies[1])
        for k, (energies, _) in zip(
            partial, evaluator.evaluate([parents[k] for k in partial], wholes)
        )
    }
    references = references or {}
    results = []
    for k, (parent, plan, (energies, gradients)) in enumerate(
        zip(parents, plans, evaluator.evaluate(parents, plans))
    ):
        pid = int(parent.info[PARENT_KEY])
        terms = BodyOrderTerms.from_energies(pid, plan, energies, gradients)
        total = totals.get(k, float(energies[-1]))
        results.append(
            ParentResult(parent, plan, energies, gradients, terms, total, references.get(pid))
        )
    return results


def build_report(
    results: list[ParentResult],
    evaluator: Evaluator,
    e1: dict[str, float],
    settings: AnalysisSettings,
    training_frames: list[ase.Atoms] | None = None,
) -> dict:
    """Every section of the report, as a JSON-able dict (units in ``report.json``)."""
    parents = {r.parent_id: r.parent for r in results}
    labelled = [r for r in results if r.reference is not None]
    report: dict = {
        "units": diagnostics.units(list(parents.values())),
        "model_info": {
            "evaluator": type(evaluator).__name__,
            "dtype": str(evaluator.dtype).removeprefix("torch."),
            "strategy": evaluator.strategy,
            "batch_size": evaluator.batch_size,
            "max_order": settings.max_order,
            "group_by": settings.group_by,
        },
        "e1": e1,
        "e1_check": diagnostics.e1_check(results, e1),
        "one_body": diagnostics.one_body_terms(
            [r.parent for r in results],
            [r.plan for r in results],
            [None if r.reference is None else r.reference.energies for r in results],
            [r.energies for r in results],
        ),
        "model": statistics_section([r.terms for r in results], parents, settings.group_by),
        "per_parent": diagnostics.per_parent(results, settings.group_by),
        "baselines": diagnostics.baselines(results, e1),
        "dimers": diagnostics.dimer_curves(results, evaluator),
        "family": diagnostics.family(
            [r.terms for r in results], {r.parent_id: r.total for r in results}
        ),
        "precision": diagnostics.precision(results, evaluator.dtype),
    }
    shifted = diagnostics.terms_with_e1(results, e1)
    if shifted is not None:
        report["model_reference_e1"] = statistics_section(shifted, parents, settings.group_by)
    if labelled:
        report["reference"] = statistics_section(
            [r.reference.terms() for r in labelled if r.reference is not None],
            {r.parent_id: r.parent for r in labelled},
            settings.group_by,
        )
        report["rmse"] = diagnostics.order_rmse(labelled)
    if training_frames:
        report["soap_distance"] = diagnostics.soap_distances(
            results, training_frames, evaluator.cutoff
        )
    report["flags"] = diagnostics.report_flags(report)
    for warning in [report["e1_check"].get("warning"), *report["flags"]["warnings"]]:
        if warning:
            LOGGER.warning(warning)
    if evaluator.dtype != torch.float64:
        LOGGER.warning(report["precision"]["warning"])
    return report
