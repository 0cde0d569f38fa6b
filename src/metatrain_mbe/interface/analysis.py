"""The MBE analysis behind ``mtt-mbe analyze``: from files to TensorMaps and
``report.json``.

The reference analysis groups labelled sub-clusters per parent, Möbius-inverts
E(S) into V(S), and writes ``DIR/reference/mbe_energy.mts``,
``DIR/reference/mbe_summary.mts`` and ``DIR/report.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import ase
import metatensor.torch as mts

from ..data import PARENT_KEY, SubclusterSet, collect_sets, resolve_e1
from ..data.tensormaps import mbe_energy_map, mbe_summary_map
from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS, BodyOrderTerms
from .statistics import group_terms, order_statistics

__all__ = [
    "AnalysisSettings",
    "reference_sets",
    "reference_terms",
    "report_section",
    "write_report",
    "write_terms",
]


@dataclass
class AnalysisSettings:
    """What to expand and how to group it.

    :param max_order: largest sub-cluster size to use (default: complete).
    :param max_atoms: largest parent expanded completely.
    :param group_by: parent info key to group statistics by (e.g. ``regime``).
    :param e1: isolated-atom energies (eV) by chemical symbol, overriding
        single-atom structures of the file.
    """

    max_order: int | None = None
    max_atoms: int = DEFAULT_MAX_ATOMS
    group_by: str | None = None
    e1: dict[str, float] = field(default_factory=dict)
    energy_key: str = "energy"
    forces_key: str = "forces"


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
            f"{_source_file(frames)}: no parent has labelled sub-clusters "
            "(create them with `mtt-mbe subclusters` and label them)"
        )
    return [s.terms() for s in sets], {s.parent_id: s.parent for s in sets}, e1


def write_terms(directory: Path, terms: list[BodyOrderTerms]) -> None:
    """Save ``mbe_energy.mts`` and ``mbe_summary.mts`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    mts.save(str(directory / "mbe_energy.mts"), mbe_energy_map(terms))
    mts.save(str(directory / "mbe_summary.mts"), mbe_summary_map(terms))


def report_section(
    terms: list[BodyOrderTerms], parents: dict[int, ase.Atoms], group_by: str | None
) -> dict:
    """Per-order statistics of ``terms``, for all parents and per group."""
    infos = {pid: atoms.info for pid, atoms in parents.items()}
    groups = group_terms(terms, infos, group_by)
    return {
        "parents": sorted(int(p.info[PARENT_KEY]) for p in parents.values()),
        "groups": {name: order_statistics(members) for name, members in groups.items()},
    }


def write_report(path: Path, report: dict) -> None:
    """Write ``report.json`` (units: eV/atom for Ṽ, eV/Å for |dṼ/dr|)."""
    report = {
        "units": {"V_tilde": "eV/atom", "dV_tilde": "eV/Angstrom", "e1": "eV"},
        **report,
    }
    path.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _source_file(frames: list[ase.Atoms]) -> str:
    return frames[0].info.get("_source", "input").rsplit(":frame", 1)[0]
