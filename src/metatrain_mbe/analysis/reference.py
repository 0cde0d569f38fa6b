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
from ..data.io import source_file
from ..data.tensormaps import mbe_energy_map, mbe_summary_map
from ..errors import MBEInputError
from ..expansion import BodyOrderTerms
from .settings import AnalysisSettings

__all__ = ["reference_sets", "reference_terms", "write_report", "write_terms"]


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


def write_terms(directory: Path, terms: list[BodyOrderTerms]) -> None:
    """Save ``mbe_energy.mts`` and ``mbe_summary.mts`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    mts.save(str(directory / "mbe_energy.mts"), mbe_energy_map(terms))
    mts.save(str(directory / "mbe_summary.mts"), mbe_summary_map(terms))


def write_report(path: Path, report: dict) -> None:
    """Write ``report.json`` (its ``units`` section names the units)."""
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
