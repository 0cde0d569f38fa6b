"""Extended XYZ input and output with the MBE keys (see ``docs/expansion.md``).

A parent cluster carries ``info["mbe_parent"]`` (a stable integer id). A
sub-cluster carries ``mbe_parent``, ``mbe_atoms`` (the parent's atom indices,
ascending) and ``mbe_order`` (the number of atoms). A single-atom structure
without ``mbe_atoms`` nor ``mbe_parent`` is the isolated-atom reference E_1 of
its species; every other structure is a parent (:func:`is_parent`).
Energies are in eV and forces in eV/Å, read from the ``energy`` / ``forces``
results of ase (or the info / arrays keys given).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import shutil
import tempfile
from pathlib import Path

import ase
import ase.io
import numpy as np

from ..errors import MBEInputError

__all__ = [
    "ATOMS_KEY",
    "ENERGY_KEY",
    "FORCES_KEY",
    "ORDER_KEY",
    "PARENT_KEY",
    "SOURCE_KEY",
    "atomic_path",
    "describe",
    "get_energy",
    "get_forces",
    "is_isolated_atom",
    "is_parent",
    "is_subcluster",
    "parent_id",
    "read_structures",
    "source_file",
    "staged_directory",
    "subcluster_atoms",
    "write_structures",
]

PARENT_KEY = "mbe_parent"
ATOMS_KEY = "mbe_atoms"
ORDER_KEY = "mbe_order"
#: info key naming the file and frame a structure was read from (never written)
SOURCE_KEY = "_source"
#: default label keys: energy in eV (``info`` or calculator), forces in eV/Å
ENERGY_KEY = "energy"
FORCES_KEY = "forces"

#: info keys that describe labels or MBE bookkeeping, not the structure
LABEL_KEYS = (ENERGY_KEY, "free_energy", "stress", PARENT_KEY, ATOMS_KEY, ORDER_KEY)


#: readers of the whole content of compressed files, by suffix
_DECOMPRESSORS = {
    ".gz": lambda path: gzip.decompress(path.read_bytes()),
    ".bz2": lambda path: bz2.decompress(path.read_bytes()),
    ".xz": lambda path: lzma.decompress(path.read_bytes()),
}


def read_structures(path: str | os.PathLike) -> list[ase.Atoms]:
    """Read every frame of an extended XYZ file (``.gz``, ``.bz2`` and ``.xz``
    compressed files too).

    Each frame gets ``info[SOURCE_KEY] = "FILE:frame K"`` so that errors can
    name it; :func:`write_structures` drops that key.
    """
    path = Path(path)
    if not path.is_file():
        raise MBEInputError(f"{path}: no such file")
    try:
        # ase's reader seeks back in the file at every frame; in a compressed
        # file each seek decompresses from the start (quadratic): decompress once
        opener = _DECOMPRESSORS.get(path.suffix)
        source = io.StringIO(opener(path).decode()) if opener else path
        frames: list[ase.Atoms] = ase.io.read(source, index=":", format="extxyz")  # type: ignore[assignment]
    except Exception as error:  # ase raises many types on malformed files
        raise MBEInputError(f"{path}: not a readable extended XYZ file ({error})") from error
    if not frames:
        raise MBEInputError(f"{path}: the file holds no structure")
    for k, atoms in enumerate(frames):
        atoms.info[SOURCE_KEY] = f"{path}:frame {k}"
    return frames


def write_structures(path: str | os.PathLike, frames: list[ase.Atoms]) -> None:
    """Write frames as extended XYZ, atomically (a temporary file renamed)."""
    clean = []
    for atoms in frames:
        copy = atoms.copy()  # ase drops the calculator: keep its results
        copy.calc = None if atoms.calc is None else _copy_results(atoms, copy)
        copy.info.pop(SOURCE_KEY, None)
        clean.append(copy)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, clean, format="extxyz")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it becomes ``path``
    (with the permissions of a newly created file), on error it is deleted, so
    a reader never sees a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name ends like ``path``: ase compresses by the name (.gz, ...)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike):
    """Yield a temporary directory next to ``path``; on success move its
    contents into ``path`` (created if needed), on error delete it.

    A command that fails half-way thus leaves no half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield stage
        path.mkdir(exist_ok=True)
        for item in sorted(stage.rglob("*")):
            target = path / item.relative_to(stage)
            if item.is_dir():
                target.mkdir(exist_ok=True)
            else:
                item.replace(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _copy_results(atoms: ase.Atoms, copy: ase.Atoms):
    from ase.calculators.singlepoint import SinglePointCalculator

    return SinglePointCalculator(copy, **dict(atoms.calc.results))


def describe(atoms: ase.Atoms) -> str:
    """Short name of a structure for error messages: file, frame and ids."""
    where = atoms.info.get(SOURCE_KEY, "structure")
    ids = [
        f"{key}={_format(atoms.info[key])}" for key in (PARENT_KEY, ATOMS_KEY) if key in atoms.info
    ]
    return f"{where} ({', '.join(ids)})" if ids else where


def source_file(frames: list[ase.Atoms]) -> str:
    """The file the first of ``frames`` was read from (``"input"`` when unknown)."""
    if not frames:
        return "input"
    return str(frames[0].info.get(SOURCE_KEY, "input")).rsplit(":frame", 1)[0]


def _format(value) -> str:
    if isinstance(value, np.ndarray):
        return "[" + " ".join(str(int(x)) for x in value.ravel()) + "]"
    return str(value)


def _label(atoms: ase.Atoms, key: str, stored: dict):
    """A label from the attached calculator's results, else from ``stored``."""
    if atoms.calc is not None and key in atoms.calc.results:
        return atoms.calc.results[key]
    return stored.get(key)


def get_energy(atoms: ase.Atoms, key: str = ENERGY_KEY) -> float | None:
    """The labelled energy (eV), or None when the structure has none."""
    value = _label(atoms, key, atoms.info)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise MBEInputError(f"{describe(atoms)}: field '{key}' is not a number") from error


def get_forces(atoms: ase.Atoms, key: str = FORCES_KEY) -> np.ndarray | None:
    """The labelled forces (eV/Å, shape ``(n_atoms, 3)``), or None."""
    value = _label(atoms, key, atoms.arrays)
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if value.shape != (len(atoms), 3):
        raise MBEInputError(
            f"{describe(atoms)}: field '{key}' has shape {value.shape}, expected ({len(atoms)}, 3)"
        )
    return value


def parent_id(atoms: ase.Atoms) -> int:
    """The ``mbe_parent`` id of a structure, or a one-line error naming it."""
    if PARENT_KEY not in atoms.info:
        raise MBEInputError(f"{describe(atoms)}: field '{PARENT_KEY}' is missing")
    try:
        return int(atoms.info[PARENT_KEY])
    except (TypeError, ValueError) as error:
        raise MBEInputError(f"{describe(atoms)}: field '{PARENT_KEY}' is not an integer") from error


def subcluster_atoms(atoms: ase.Atoms) -> list[int]:
    """The parent atom indices of a sub-cluster (``info["mbe_atoms"]``)."""
    raw = np.atleast_1d(np.asarray(atoms.info[ATOMS_KEY]))
    try:
        indices = [int(x) for x in raw]
    except (TypeError, ValueError) as error:
        raise MBEInputError(
            f"{describe(atoms)}: field '{ATOMS_KEY}' is not a list of integers"
        ) from error
    if len(indices) != len(atoms) or indices != sorted(set(indices)):
        raise MBEInputError(
            f"{describe(atoms)}: field '{ATOMS_KEY}' must list {len(atoms)} distinct "
            "ascending atom indices"
        )
    return indices


def is_subcluster(atoms: ase.Atoms) -> bool:
    """Whether the structure is a sub-cluster of a parent (has ``mbe_atoms``)."""
    return ATOMS_KEY in atoms.info


def is_isolated_atom(atoms: ase.Atoms) -> bool:
    """Whether the structure is an isolated-atom reference (one atom, neither
    ``mbe_atoms`` nor ``mbe_parent``).
    """
    return len(atoms) == 1 and not is_subcluster(atoms) and PARENT_KEY not in atoms.info


def is_parent(atoms: ase.Atoms) -> bool:
    """Whether the structure is a parent cluster: neither a sub-cluster nor an
    isolated atom. The one definition every command uses.
    """
    return not is_subcluster(atoms) and not is_isolated_atom(atoms)
