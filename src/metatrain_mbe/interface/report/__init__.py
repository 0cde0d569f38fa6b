"""The MBE report for people: ``report.md`` with PNG figures (matplotlib,
optional) and a chemiscope view of the parents (optional), for a model
analysis (:func:`metatrain_mbe.analysis.build_report`) or a reference-only one
(:func:`metatrain_mbe.interface.reference_analysis.analyze_reference`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...analysis import ParentResult

__all__ = ["describe_source", "write_extras"]


def describe_source(report: dict) -> str:
    """What was analysed, from the report's ``source`` entry (file names by
    role, e.g. ``{"model": "model.pt", "data": "test.xyz"}``):
    ``"model: model.pt, data: test.xyz"``; empty without one."""
    return ", ".join(f"{role}: {name}" for role, name in report.get("source", {}).items())


def write_extras(
    directory: Path,
    report: dict,
    results: Sequence[ParentResult] = (),
    source: str | None = None,
) -> None:
    """``report.md``, ``figures/*.png`` (when matplotlib is installed) and, for
    a model, ``parents.chemiscope.json.gz`` (when chemiscope is installed: one
    structure per parent, its per-order terms and m-body forces).

    :param report: a model report, or a reference-only one (no ``model`` section).
    :param results: the model's per-parent results (none for a reference-only report).
    :param source: what was analysed, shown under every figure title and at
        the top of ``report.md`` (default: :func:`describe_source` of the report).
    """
    from .chemiscope_view import write_chemiscope
    from .figures import write_figures
    from .markdown import write_markdown

    source = describe_source(report) if source is None else source
    figures = write_figures(directory / "figures", report, source)
    viewer = write_chemiscope(directory / "parents.chemiscope.json.gz", results, source=source)
    write_markdown(directory / "report.md", report, figures, viewer, source)
