"""The model MBE report: ``report.json`` content, ``report.md`` with PNG figures
(matplotlib, optional) and a chemiscope view of the sub-clusters (optional)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..analysis import AnalysisSettings, report_section
from . import sections

__all__ = ["build_report", "write_extras"]

LOGGER = logging.getLogger(__name__)


def build_report(
    results, evaluator, e1: dict[str, float], settings: AnalysisSettings,
    training_frames=None,
) -> dict:
    """Every section of the report, as a JSON-able dict (units in ``report.json``)."""
    parents = {r.parent_id: r.parent for r in results}
    labelled = [r for r in results if r.reference is not None]
    report = {
        "model_info": {
            "evaluator": type(evaluator).__name__,
            "dtype": str(evaluator.dtype).removeprefix("torch."),
            "strategy": getattr(evaluator, "strategy", None),
            "max_order": settings.max_order,
            "group_by": settings.group_by,
        },
        "e1": e1,
        "model": report_section([r.terms for r in results], parents, settings.group_by),
        "per_parent": sections.per_parent(results, settings.group_by),
        "baselines": sections.baselines(results, e1),
        "dimers": sections.dimer_curves(results, evaluator),
        "precision": sections.precision(results, evaluator.dtype),
    }
    if labelled:
        report["reference"] = report_section(
            [r.reference.terms() for r in labelled],
            {r.parent_id: r.parent for r in labelled},
            settings.group_by,
        )
        report["rmse"] = sections.order_rmse(labelled)
    if training_frames:
        report["soap_distance"] = sections.soap_distances(
            results, training_frames, getattr(evaluator, "cutoff", None)
        )
    if evaluator.dtype != torch.float64:
        LOGGER.warning(report["precision"]["warning"])
    return report


def write_extras(directory: Path, report: dict, results) -> None:
    """``report.md``, ``figures/*.png`` (when matplotlib is installed) and
    ``subclusters.chemiscope.json.gz`` (when chemiscope is installed)."""
    from .chemiscope_view import write_chemiscope
    from .figures import write_figures
    from .markdown import write_markdown

    figures = write_figures(directory / "figures", report)
    viewer = write_chemiscope(directory / "subclusters.chemiscope.json.gz", results)
    write_markdown(directory / "report.md", report, figures, viewer)
