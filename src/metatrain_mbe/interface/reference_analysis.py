"""The reference MBE analysis as files: TensorMaps, ``report.json`` and
``report.md`` with figures, written all at once (``mtt-mbe analyze`` without
``--model``)."""

from __future__ import annotations

import logging
from pathlib import Path

import ase

from ..analysis import (
    AnalysisSettings,
    diagnostics,
    reference_terms,
    statistics_section,
    write_report,
    write_terms,
)
from ..data.io import source_file, staged_directory
from .report import write_extras

__all__ = ["analyze_reference"]

LOGGER = logging.getLogger(__name__)


def analyze_reference(
    frames: list[ase.Atoms], output: str | Path, settings: AnalysisSettings
) -> dict:
    """Decompose the labelled sub-cluster sets of ``frames`` into body orders and report.

    :param frames: parents, their labelled sub-clusters and the isolated atoms.
    :param output: directory; gets ``reference/mbe_energy.mts``,
        ``reference/mbe_summary.mts``, ``report.json``, ``report.md`` and
        ``figures/*.png`` (with matplotlib), or nothing when the analysis fails.
    :param settings: orders, grouping, E_1 and label keys.
    :return: the report (the content of ``report.json``): ``source`` (the data
        file's name), ``e1`` (eV by symbol) and ``e1_given`` (the symbols whose
        E_1 came from ``settings.e1`` rather than an isolated atom of the
        file), ``reference`` (per-order mean and std over parents, per group),
        ``per_parent`` (Ṽ^(m) eV/atom, |dṼ^(m)/dr| eV/Å), ``dimers`` (labelled
        V^(2)(r), eV per dimer against Å) and ``flags``.
    :raises MBEInputError: when no parent has a complete labelled set.
    """
    terms, parents, e1 = reference_terms(frames, settings)
    report: dict = {
        "units": diagnostics.units(list(parents.values())),
        "source": {"data": Path(source_file(frames)).name},
        "e1": e1,
        "e1_given": sorted(set(settings.e1) & set(e1)),
        "reference": statistics_section(terms, parents, settings.group_by),
        "per_parent": diagnostics.reference_per_parent(terms, parents, settings.group_by),
        "one_body": diagnostics.one_body_terms(
            [parents[t.system] for t in terms], [t.plan for t in terms], [t.v for t in terms]
        ),
        "dimers": diagnostics.labelled_dimers(terms, parents),
    }
    report["flags"] = diagnostics.report_flags(report)
    with staged_directory(output) as stage:
        write_terms(stage / "reference", terms)
        write_extras(stage, report)
        write_report(stage / "report.json", report)
    LOGGER.info("wrote the reference MBE analysis of %d parents to %s", len(terms), output)
    return report
