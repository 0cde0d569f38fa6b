"""A chemiscope view of the sub-clusters, coloured by V(S) and its error."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import ase
import torch

from ...analysis import ParentResult
from ...compute.export import REFERENCES

__all__ = ["MAX_STRUCTURES", "write_chemiscope"]

LOGGER = logging.getLogger(__name__)

#: largest number of sub-clusters put in the view (a browser's comfort)
MAX_STRUCTURES = 20000


def write_chemiscope(path: Path, results: Sequence[ParentResult]) -> Path | None:
    """Write the sub-clusters with at least two atoms, with properties V(S)
    (model, reference, error; eV), order and parent; ``None`` without chemiscope
    or without a sub-cluster of two atoms or more."""
    try:
        import chemiscope
    except ImportError:
        LOGGER.info("chemiscope is not installed: no chemiscope view written")
        return None
    frames: list[ase.Atoms] = []
    columns: dict[str, list[float]] = {"order": [], "parent": [], "V model": []}
    reference: list[float] = []
    error: list[float] = []
    for r in results:
        ref_v = None if r.reference is None else r.reference.terms().v
        for row in torch.nonzero(r.plan.orders >= 2).flatten().tolist():
            if len(frames) == MAX_STRUCTURES:
                break
            frames.append(r.parent[r.plan.atoms_in(row)])
            columns["order"].append(int(r.plan.orders[row]))
            columns["parent"].append(r.parent_id)
            columns["V model"].append(float(r.terms.v[row]))
            reference.append(float("nan") if ref_v is None else float(ref_v[row]))
            error.append(float("nan") if ref_v is None else float(r.terms.v[row] - ref_v[row]))
    if not frames:
        return None
    if any(x == x for x in reference):
        columns["V reference"], columns["V error"] = reference, error
    units = {"V model": "eV", "V reference": "eV", "V error": "eV"}
    properties = {
        name: {"target": "structure", "values": values, "units": units.get(name, "")}
        for name, values in columns.items()
    }
    color = "V error" if "V error" in columns else "V model"
    chemiscope.write_input(
        str(path),
        structures=frames,
        properties=properties,
        metadata={
            "name": "MBE sub-clusters: V(S) of the model",
            "description": "Every sub-cluster S of two bodies or more of the analysed parents, "
            "with its many-body term V(S) (eV) from the model and, where the labels allow, "
            "from the reference, and their difference.",
            "references": list(REFERENCES),
        },
        settings={
            "map": {
                "x": {"property": "order"},
                "y": {"property": "V model"},
                "color": {"property": color},
            }
        },
    )
    return path
