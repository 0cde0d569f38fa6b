"""The model MBE report for people: ``report.md`` with PNG figures (matplotlib,
optional) and a chemiscope view of the sub-clusters (optional). The numbers come
from :func:`metatrain_mbe.analysis.build_report`."""

from __future__ import annotations

from pathlib import Path

from ...analysis import ParentResult

__all__ = ["write_extras"]


def write_extras(directory: Path, report: dict, results: list[ParentResult]) -> None:
    """``report.md``, ``figures/*.png`` (when matplotlib is installed) and
    ``subclusters.chemiscope.json.gz`` (when chemiscope is installed)."""
    from .chemiscope_view import write_chemiscope
    from .figures import write_figures
    from .markdown import write_markdown

    figures = write_figures(directory / "figures", report)
    viewer = write_chemiscope(directory / "subclusters.chemiscope.json.gz", results)
    write_markdown(directory / "report.md", report, figures, viewer)
