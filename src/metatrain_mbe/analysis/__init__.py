"""Layer 4 — the MBE analysis: settings, reference sets and terms, the model's
sub-cluster results, per-order statistics and every number of the report.

It computes; writing the human-readable report (Markdown, figures, chemiscope)
and the commands belong to :mod:`metatrain_mbe.interface`.
"""

from .model import ParentResult, build_report, make_evaluator, model_results, parent_plans
from .reference import (
    build_reference_report,
    reference_sets,
    reference_terms,
    write_report,
    write_terms,
)
from .settings import AnalysisSettings
from .statistics import ALL, group_terms, order_statistics, statistics_section

__all__ = [
    "ALL",
    "AnalysisSettings",
    "ParentResult",
    "build_reference_report",
    "build_report",
    "group_terms",
    "make_evaluator",
    "model_results",
    "parent_plans",
    "order_statistics",
    "reference_sets",
    "reference_terms",
    "statistics_section",
    "write_report",
    "write_terms",
]
