"""metatrain's data set specifications (``training_set``, ``validation_set``,
``test_set`` of its options, as plain data): the structure file of a set, its
label keys, and the same specification reading other files.

>>> spec = {"systems": "parents.xyz", "targets": {"energy": {"unit": "eV"}}}
>>> rewrite_paths(spec, lambda path: "out/" + path)["systems"], label_keys(spec)
('out/parents.xyz', ('energy', 'forces'))
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MBEInputError
from .io import ENERGY_KEY, FORCES_KEY

__all__ = ["PATH_KEYS", "label_keys", "replacing", "rewrite_paths", "single_set"]

#: keys of metatrain set specifications whose string value is a file name
PATH_KEYS = ("read_from", "systems")


def single_set(options: dict, name: str, source: str) -> tuple[Any, Path]:
    """The set specification of ``options[name]`` (one set) and its structure file."""
    spec = options.get(name)
    if isinstance(spec, list):
        if len(spec) != 1:
            raise MBEInputError(
                f"{source}: {name}: give one set; mtt-mbe builds the list (parents, sub-clusters)"
            )
        spec = spec[0]
    systems = spec.get("systems") if isinstance(spec, dict) else spec
    path = systems.get("read_from") if isinstance(systems, dict) else systems
    if not isinstance(path, str):
        raise MBEInputError(f"{source}: {name}: no structure file (systems.read_from)")
    return spec, Path(path)


def label_keys(spec: Any) -> tuple[str, str]:
    """The energy and forces keys of a set specification's ``energy`` target
    (metatrain's defaults: ``energy`` and ``forces``)."""
    target = spec.get("targets", {}).get("energy", {}) if isinstance(spec, dict) else {}
    if not isinstance(target, dict):
        return ENERGY_KEY, FORCES_KEY
    forces = target.get("forces") or {}
    forces_key = forces.get("key") if isinstance(forces, dict) else None
    return target.get("key") or ENERGY_KEY, forces_key or FORCES_KEY


def rewrite_paths(spec: Any, rewrite: Callable[[str], str]) -> Any:
    """``spec`` (options or a set specification, as plain data) with every file
    name replaced by ``rewrite(name)``: the string values of :data:`PATH_KEYS`,
    and ``spec`` itself when it is a string."""
    if isinstance(spec, str):
        return rewrite(spec)
    if isinstance(spec, dict):
        return {
            key: value
            if isinstance(value, str) and key not in PATH_KEYS
            else rewrite_paths(value, rewrite)
            for key, value in spec.items()
        }
    if isinstance(spec, list):
        return [rewrite_paths(value, rewrite) for value in spec]
    return spec


def replacing(old: str, new: str) -> Callable[[str], str]:
    """A path rewriter for :func:`rewrite_paths` that replaces ``old`` by ``new``."""
    return lambda path: new if path == old else path
