"""The reference MBE: labelled sub-cluster sets to body-ordered terms, and the
files of an analysis.

The reference analysis groups labelled sub-clusters per parent, Möbius-inverts
E(S) into V(S); :func:`write_terms` saves ``mbe_energy.mts`` and
``mbe_summary.mts``, :func:`write_report` the ``report.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import metatensor.torch as mts

from ..data import SubclusterSet, collect_sets, resolve_e1
from ..data.io import get_energy, naming_path, source_file
from ..data.tensormaps import mbe_energy_map, mbe_summary_map
from ..errors import MBEInputError
from ..expansion import BodyOrderTerms
from . import diagnostics
from .settings import AnalysisSettings
from .statistics import statistics_section

__all__ = [
    "build_reference_report",
    "reference_sets",
    "reference_terms",
    "write_report",
    "write_terms",
]


def reference_sets(
    frames: list[ase.Atoms], settings: AnalysisSettings
) -> tuple[list[SubclusterSet], dict[str, float]]:
    """The complete labelled sub-cluster sets of ``frames`` (possibly none)
    and the E_1 used (eV by symbol)."""
    e1 = resolve_e1(frames, settings.e1, settings.energy_key)
    sets, _ = collect_sets(
        frames,
        e1,
        max_order=settings.max_order,
        max_atoms=settings.max_atoms,
        cutoffs=settings.cutoffs,
        energy_key=settings.energy_key,
        forces_key=settings.forces_key,
    )
    return sets, e1


def reference_terms(
    frames: list[ase.Atoms], settings: AnalysisSettings
) -> tuple[list[BodyOrderTerms], dict[int, ase.Atoms], dict[str, float]]:
    """Body-ordered terms of the labelled sets in ``frames``.

    :return: the terms of each parent with a complete set, those parents by
        ``mbe_parent`` id, and the E_1 used (eV by symbol).
    :raises MBEInputError: when no parent has labelled sub-clusters.
    """
    sets, e1 = reference_sets(frames, settings)
    if not sets:
        raise MBEInputError(
            f"{source_file(frames)}: no parent has labelled sub-clusters "
            "(create them with `mtt-mbe subclusters` and label them)"
        )
    return [s.terms() for s in sets], {s.parent_id: s.parent for s in sets}, e1


def build_reference_report(
    terms: list[BodyOrderTerms],
    parents: dict[int, ase.Atoms],
    e1: dict[str, float],
    settings: AnalysisSettings,
) -> dict:
    """Every section of a reference-only ``report.json`` (units in its ``units``
    section): ``e1`` (eV by symbol) and ``e1_given`` (the symbols whose E_1
    came from ``settings.e1`` rather than an isolated atom of the file),
    ``reference`` (per-order mean and std over parents, per group),
    ``per_parent``, ``one_body``, ``dimers`` (labelled V^(2)(r)), ``family``
    (kept sub-clusters and the truncation error against labelled parents) and
    ``flags``. The model report is :func:`~.model.build_report`.
    """
    report: dict = {
        "units": diagnostics.units(list(parents.values())),
        "e1": e1,
        "e1_given": sorted(set(settings.e1) & set(e1)),
        "reference": statistics_section(terms, parents, settings.group_by),
        "per_parent": diagnostics.reference_per_parent(terms, parents, settings.group_by),
        "one_body": diagnostics.one_body_terms(
            [parents[t.system] for t in terms], [t.plan for t in terms], [t.v for t in terms]
        ),
        "dimers": diagnostics.labelled_dimers(terms, parents),
        "family": diagnostics.family(terms, _labelled_totals(parents, settings.energy_key)),
    }
    report["flags"] = diagnostics.report_flags(report)
    return report


def _labelled_totals(parents: dict[int, ase.Atoms], energy_key: str) -> dict[int, float]:
    """The labelled energies of the parents that have one (eV), by id."""
    energies = {pid: get_energy(parent, energy_key) for pid, parent in parents.items()}
    return {pid: e for pid, e in energies.items() if e is not None}


def write_terms(directory: Path, terms: list[BodyOrderTerms]) -> None:
    """Save ``mbe_energy.mts`` and ``mbe_summary.mts`` into ``directory``.

    Each map is serialised in memory and written by Python, so that a full
    disk is an ``OSError`` naming the file (metatensor's own writer reports it
    as a RuntimeError, after printing a fragment of its own to stderr).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name, tensor in (
        ("mbe_energy", mbe_energy_map(terms)),
        ("mbe_summary", mbe_summary_map(terms)),
    ):
        path = directory / f"{name}.mts"
        try:
            path.write_bytes(mts.save_buffer(tensor).numpy().tobytes())
        except OSError as error:
            raise naming_path(error, path, "writing the expansion's terms") from error


def write_report(path: Path, report: dict) -> None:
    """Write ``report.json`` (its ``units`` section names the units)."""
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
