"""metatrain's data set specifications (``training_set``, ``validation_set``,
``test_set`` of its options, as plain data): the structure file of a set, its
label keys, and the same specification reading other files.

>>> spec = {"systems": "parents.xyz", "targets": {"energy": {"unit": "eV"}}}
>>> rewrite_paths(spec, lambda path: "out/" + path)["systems"], label_keys(spec)
('out/parents.xyz', ('energy', 'forces'))
>>> file_fields({"training_set": [{"systems": {"read_from": "a.xyz"}}]})
[('training_set[0].systems.read_from', 'a.xyz')]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.io import ENERGY_KEY, FORCES_KEY
from ..errors import MBEInputError

__all__ = ["PATH_KEYS", "file_fields", "label_keys", "replacing", "rewrite_paths", "single_set"]

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
    name replaced by ``rewrite(name)`` (the file names of :func:`file_fields`)."""
    return _map_files(spec, lambda field, path: rewrite(path), "")


def file_fields(spec: Any, field: str = "") -> list[tuple[str, str]]:
    """(field, file name) of every file name of ``spec``: the string values of
    :data:`PATH_KEYS` at any depth, strings in lists, and ``spec`` itself when
    it is a string; ``field`` as ``training_set[0].systems.read_from``."""
    found: list[tuple[str, str]] = []

    def record(name: str, path: str) -> str:
        found.append((name, path))
        return path

    _map_files(spec, record, field)
    return found


def _map_files(spec: Any, rewrite: Callable[[str, str], str], field: str) -> Any:
    """``spec`` with each file name replaced by ``rewrite(field, name)``."""
    if isinstance(spec, str):
        return rewrite(field, spec)
    if isinstance(spec, dict):
        return {
            key: value
            if isinstance(value, str) and key not in PATH_KEYS
            else _map_files(value, rewrite, f"{field}.{key}" if field else str(key))
            for key, value in spec.items()
        }
    if isinstance(spec, list):
        return [_map_files(value, rewrite, f"{field}[{k}]") for k, value in enumerate(spec)]
    return spec


def replacing(old: str, new: str) -> Callable[[str], str]:
    """A path rewriter for :func:`rewrite_paths` that replaces ``old`` by ``new``."""
    return lambda path: new if path == old else path
