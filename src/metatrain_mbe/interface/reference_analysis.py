"""The reference MBE analysis as files: TensorMaps, ``report.json`` and
``report.md`` with figures, written all at once (``mtt-mbe analyze`` without
``--model``)."""

from __future__ import annotations

import logging
from pathlib import Path

import ase

from ..analysis import (
    AnalysisSettings,
    build_reference_report,
    reference_terms,
    write_report,
    write_terms,
)
from ..data.assembly import parents_to_analyse
from ..data.io import PARENT_KEY, source_file, staged_directory
from .report import write_extras

__all__ = ["analyze_reference"]

LOGGER = logging.getLogger(__name__)


def analyze_reference(
    frames: list[ase.Atoms],
    output: str | Path,
    settings: AnalysisSettings,
    parent_ids: list[int] | None = None,
) -> dict:
    """Decompose the labelled sub-cluster sets of ``frames`` into body orders and report.

    :param frames: parents, their labelled sub-clusters and the isolated atoms.
    :param output: directory; gets ``reference/mbe_energy.mts``,
        ``reference/mbe_summary.mts``, ``report.json``, ``report.md`` and
        ``figures/*.png`` (with matplotlib), or nothing when the analysis fails.
    :param settings: orders, grouping, E_1 and label keys.
    :param parent_ids: the parents whose sets are analysed (default: every
        parent of ``frames``); the isolated atoms are kept.
    :return: the report (the content of ``report.json``): the sections of
        :func:`~metatrain_mbe.analysis.build_reference_report` and ``source``
        (the data file's name).
    :raises MBEInputError: when no parent has a complete labelled set, or for
        an id of ``parent_ids`` that no parent has.
    """
    if parent_ids is not None:
        kept = {-1} | {int(p.info[PARENT_KEY]) for p in parents_to_analyse(frames, parent_ids)}
        frames = [a for a in frames if int(a.info.get(PARENT_KEY, -1)) in kept]  # -1: atoms
    terms, parents, e1 = reference_terms(frames, settings)
    report = build_reference_report(terms, parents, e1, settings)
    source = {"data": Path(source_file(frames)).name}
    report = {"units": report["units"], "source": source, **report}
    with staged_directory(output) as stage:
        write_terms(stage / "reference", terms)
        write_extras(stage, report)
        write_report(stage / "report.json", report)
    LOGGER.info("wrote the reference MBE analysis of %d parents to %s", len(terms), output)
    return report
