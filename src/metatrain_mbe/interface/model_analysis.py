"""MBE analysis of a trained model: what it predicts, decomposed into body orders.

:func:`analyze_model` evaluates every sub-cluster of the chosen parents with the
model (batched, :class:`~metatrain_mbe.compute.evaluator.ModelEvaluator`, or any
ase calculator), Möbius-inverts E(S) into V(S), compares with the reference
where the frames hold labelled sub-clusters, and writes TensorMaps, the report
(``report.json``, ``report.md`` with figures) and a chemiscope view. All
analysis is float64 (energies eV, gradients eV/Å, distances Å).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import ase
import torch

from ..data import PARENT_KEY, SubclusterSet, assign_parent_ids, describe
from ..data.io import is_isolated_atom, is_subcluster
from ..errors import MBEInputError
from ..expansion import BodyOrderTerms, SubsetPlan
from .analysis import AnalysisSettings, reference_sets, write_report, write_terms
from .output import staged_directory

__all__ = ["ParentResult", "analyze_model", "make_evaluator", "select_parents", "model_results"]

LOGGER = logging.getLogger(__name__)


@dataclass
class ParentResult:
    """The model's sub-cluster energies and terms of one parent, with the
    reference set when the frames label it.

    :param energies: ``(plan.n_subsets,)`` model E(S) in eV.
    :param gradients: ``(plan.n_subsets, N, 3)`` model dE(S)/dr in eV/Å.
    """

    parent: ase.Atoms
    plan: SubsetPlan
    energies: torch.Tensor
    gradients: torch.Tensor
    terms: BodyOrderTerms
    reference: SubclusterSet | None = None

    @property
    def parent_id(self) -> int:
        """The ``mbe_parent`` id."""
        return int(self.parent.info[PARENT_KEY])


def make_evaluator(model, extensions=None, device: str | None = None):
    """An evaluator for ``model``: an exported metatomic model (path or loaded)
    or an ase calculator."""
    from ase.calculators.calculator import BaseCalculator

    from ..compute.ase_evaluator import CalculatorEvaluator
    from ..compute.evaluator import ModelEvaluator

    if isinstance(model, BaseCalculator):
        return CalculatorEvaluator(model)
    return ModelEvaluator(model, extensions=extensions, device=device)


def select_parents(frames: list[ase.Atoms], parent_ids: list[int] | None) -> list[ase.Atoms]:
    """The parents of ``frames`` (neither sub-clusters nor isolated atoms),
    with ``mbe_parent`` ids (default: frame index), restricted to ``parent_ids``."""
    parents = []
    for k, atoms in enumerate(frames):
        if not is_subcluster(atoms) and not is_isolated_atom(atoms):
            atoms.info.setdefault(PARENT_KEY, k)
            parents.append(atoms)
    assign_parent_ids(parents)
    if parent_ids is None:
        if not parents:
            raise MBEInputError(f"{_source(frames)}: no parent cluster to analyse")
        return parents
    by_id = {int(p.info[PARENT_KEY]): p for p in parents}
    missing = sorted(set(parent_ids) - set(by_id))
    if missing:
        raise MBEInputError(f"{_source(frames)}: field '{PARENT_KEY}' has no parent {missing}")
    return [by_id[pid] for pid in parent_ids]


def model_results(
    evaluator, parents: list[ase.Atoms], settings: AnalysisSettings,
    references: dict[int, SubclusterSet] | None = None,
) -> list[ParentResult]:
    """Evaluate every sub-cluster of ``parents`` and Möbius-invert (float64)."""
    plans = []
    for parent in parents:
        try:
            plans.append(SubsetPlan(len(parent), settings.max_order, max_atoms=settings.max_atoms))
        except ValueError as error:
            raise MBEInputError(f"{describe(parent)}: {error}") from error
    references = references or {}
    results = []
    for parent, plan, (energies, gradients) in zip(
        parents, plans, evaluator.evaluate(parents, plans)
    ):
        pid = int(parent.info[PARENT_KEY])
        terms = BodyOrderTerms.from_energies(pid, plan, energies, gradients)
        results.append(
            ParentResult(parent, plan, energies, gradients, terms, references.get(pid))
        )
    return results


def analyze_model(
    model,
    frames: list[ase.Atoms],
    output: str | Path,
    settings: AnalysisSettings,
    extensions: str | Path | None = None,
    parent_ids: list[int] | None = None,
    training_frames: list[ase.Atoms] | None = None,
    device: str | None = None,
) -> dict:
    """Decompose a model's predictions on ``frames`` into body orders and report.

    :param model: exported metatomic model (``model.pt``, or loaded), or an ase
        calculator.
    :param frames: parents (``mbe_parent`` ids, default frame index) and
        optionally labelled sub-clusters and isolated atoms.
    :param output: directory; gets ``model/mbe_energy.mts``,
        ``model/mbe_summary.mts``, ``reference/*.mts`` where labels exist,
        ``report.json``, ``report.md``, figures and ``subclusters.chemiscope.json.gz``.
    :param settings: orders, grouping, E_1 and label keys.
    :param extensions: the model's extensions directory.
    :param parent_ids: parents to analyse (default: every parent of ``frames``).
    :param training_frames: training structures, for the SOAP distance section.
    :param device: torch device of the model.
    :return: the report (the content of ``report.json``).
    """
    from .report import build_report, write_extras

    parents = select_parents(frames, parent_ids)
    sets, e1 = reference_sets(frames, settings)
    references = {s.parent_id: s for s in sets}
    evaluator = make_evaluator(model, extensions, device)
    results = model_results(evaluator, parents, settings, references)
    report = build_report(results, evaluator, e1, settings, training_frames)
    with staged_directory(output) as stage:
        write_terms(stage / "model", [r.terms for r in results])
        labelled = [r.reference.terms() for r in results if r.reference is not None]
        if labelled:
            write_terms(stage / "reference", labelled)
        write_extras(stage, report, results)
        write_report(stage / "report.json", report)
    LOGGER.info("wrote the MBE analysis of %d parents to %s", len(results), output)
    return report


def _source(frames: list[ase.Atoms]) -> str:
    if not frames:
        return "input"
    return str(frames[0].info.get("_source", "input")).rsplit(":frame", 1)[0]
