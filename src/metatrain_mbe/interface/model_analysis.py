"""The model MBE analysis as files: TensorMaps, ``report.json``, ``report.md``
with figures and a chemiscope view, written all at once."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ase

from ..analysis import (
    AnalysisSettings,
    build_report,
    make_evaluator,
    model_results,
    parent_plans,
    reference_sets,
    write_report,
    write_terms,
)
from ..data.assembly import parents_to_analyse
from ..data.io import source_file, staged_directory
from .report import write_extras

__all__ = ["analyze_model"]

LOGGER = logging.getLogger(__name__)


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

    :param model: exported metatomic model (``model.pt``, or loaded), an ase
        calculator, or an evaluator (:func:`~metatrain_mbe.analysis.make_evaluator`).
    :param frames: parents (``mbe_parent`` ids, default frame index) and
        optionally labelled sub-clusters and isolated atoms.
    :param output: directory; gets ``model/mbe_energy.mts``,
        ``model/mbe_summary.mts``, ``reference/*.mts`` where labels exist,
        ``report.json``, ``report.md``, figures and ``parents.chemiscope.json.gz``.
    :param settings: orders, grouping, E_1, label keys and batching.
    :param extensions: the model's extensions directory.
    :param parent_ids: parents to analyse (default: every parent of ``frames``).
    :param training_frames: training structures, for the SOAP distance section.
    :param device: torch device of the model.
    :return: the report (the content of ``report.json``).
    """
    parents = parents_to_analyse(frames, parent_ids)
    plans = parent_plans(parents, settings)
    sets, e1 = reference_sets(frames, settings)
    references = {s.parent_id: s for s in sets}
    evaluator = make_evaluator(model, settings, extensions, device)
    results = model_results(evaluator, parents, plans, references)
    report = build_report(results, evaluator, e1, settings, training_frames)
    report["source"] = {"model": _model_name(model), "data": Path(source_file(frames)).name}
    with staged_directory(output) as stage:
        write_terms(stage / "model", [r.terms for r in results])
        labelled = [r.reference.terms() for r in results if r.reference is not None]
        if labelled:
            write_terms(stage / "reference", labelled)
        write_extras(stage, report, results)
        write_report(stage / "report.json", report)
    LOGGER.info("wrote the MBE analysis of %d parents to %s", len(results), output)
    return report


def _model_name(model) -> str:
    """The model's file name, or its type for a loaded model or calculator."""
    if isinstance(model, (str, os.PathLike)):
        return Path(model).name
    return type(model).__name__
