"""Extended XYZ input and output with the MBE keys (see ``docs/expansion.md``).

A parent cluster carries ``info["mbe_parent"]`` (a stable integer id). A
sub-cluster carries ``mbe_parent``, ``mbe_atoms`` (the parent's atom indices,
ascending) and ``mbe_order`` (the number of bodies in it). A body is an atom,
unless the parent declares fragments (molecules): a per-atom integer array
``mbe_fragment`` numbering them 0 .. K-1; its sub-clusters then are unions of
whole fragments and carry the same array for their atoms. A single-atom structure
without ``mbe_atoms`` nor ``mbe_parent`` is the isolated-atom reference E_1 of
its species; every other structure is a parent (:func:`is_parent`).
Energies are in eV and forces in eV/Å, read from the ``energy`` / ``forces``
results of ase (or the info / arrays keys given).

Every structure read is checked: at least one atom, and
(:func:`check_positions`) finite positions, no two atoms closer than
:data:`MIN_DISTANCE`. Labels are checked where they are
read (:func:`get_energy`, :func:`get_forces`): finite numbers of the right shape.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import itertools
import lzma
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ase
import ase.io
import numpy as np

from ..errors import MBEInputError

__all__ = [
    "ATOMS_KEY",
    "CHARGES_ARRAY",
    "CHARGE_KEY",
    "ENERGY_KEY",
    "FORCES_KEY",
    "FRAGMENT_KEY",
    "MAGMOMS_ARRAY",
    "ORDER_KEY",
    "PARENT_KEY",
    "SOURCE_KEY",
    "SPIN_KEY",
    "STATE_KEYS",
    "STRATEGY_KEY",
    "THEORY_KEY",
    "MIN_DISTANCE",
    "atomic_path",
    "check_cluster",
    "check_positions",
    "describe",
    "fragments_of",
    "get_energy",
    "get_forces",
    "is_isolated_atom",
    "is_parent",
    "is_subcluster",
    "naming_path",
    "parent_id",
    "read_structures",
    "reading_once",
    "require_energy",
    "source_file",
    "staged_directory",
    "subcluster_atoms",
    "write_structures",
]

PARENT_KEY = "mbe_parent"
ATOMS_KEY = "mbe_atoms"
ORDER_KEY = "mbe_order"
#: per-atom array: the fragment (molecule) of each atom, 0 .. K-1
FRAGMENT_KEY = "mbe_fragment"
#: info key naming the file and frame a structure was read from (never written)
SOURCE_KEY = "_source"
#: default label keys: energy in eV (``info`` or calculator), forces in eV/Å
ENERGY_KEY = "energy"
FORCES_KEY = "forces"
#: smallest distance (Å) between two atoms of a structure: closer atoms (a
#: duplicated atom, a corrupted file) are refused when a file is read
MIN_DISTANCE = 0.1

#: ``info`` keys of a structure's total charge (e, a whole number) and spin
#: multiplicity 2S + 1 (the convention of fairchem's and metatomic's ase
#: calculators), which a sub-cluster does not share with its parent
CHARGE_KEY, SPIN_KEY = "charge", "spin"
STATE_KEYS = (CHARGE_KEY, SPIN_KEY)
#: ase's per-atom charges (e), summing to the total charge
CHARGES_ARRAY = "initial_charges"
#: ase's per-atom collinear magnetic moments (μB), summing to 2S
MAGMOMS_ARRAY = "initial_magmoms"

#: info key of a label's level of theory (``mtt-mbe label``: the calculator and
#: every setting, e.g. ``pyscf;basis=cc-pvdz;...;spin_treatment=restricted;xc=pbe``)
THEORY_KEY = "mbe_theory"
#: info key of the solver strategy that converged a label (PySCF)
STRATEGY_KEY = "mbe_strategy"

#: info keys that describe labels or MBE bookkeeping, not the structure
LABEL_KEYS = (
    ENERGY_KEY,
    "free_energy",
    "stress",
    PARENT_KEY,
    ATOMS_KEY,
    ORDER_KEY,
    THEORY_KEY,
    STRATEGY_KEY,
)


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

    :raises MBEInputError: for a missing, unreadable or empty file, a frame
        announcing more atoms than the rest of the file holds (refused before
        ase reads it), a frame with no atoms, or a frame whose positions
        :func:`check_positions` refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise MBEInputError(f"{path}: no such file")
    key = (str(path.resolve()), path.stat().st_mtime_ns, path.stat().st_size)
    if _READ_ONCE is not None and key in _READ_ONCE:
        return [_copy(atoms, f"{path}:frame {k}") for k, atoms in enumerate(_READ_ONCE[key])]
    try:
        # ase's reader seeks back in the file at every frame; in a compressed
        # file each seek decompresses from the start (quadratic): decompress once
        opener = _DECOMPRESSORS.get(path.suffix)
        source: io.StringIO | Path = io.StringIO(opener(path).decode()) if opener else path
        if isinstance(source, io.StringIO):
            _check_atom_counts(path, source)
            source.seek(0)
        else:
            with open(path) as stream:  # as ase opens it: the same lines
                _check_atom_counts(path, stream)
        frames: list[ase.Atoms] = ase.io.read(source, index=":", format="extxyz")  # type: ignore[assignment]
    except MBEInputError:
        raise
    except Exception as error:  # ase raises many types on malformed files
        raise MBEInputError(f"{path}: not a readable extended XYZ file ({error})") from error
    if not frames:
        raise MBEInputError(f"{path}: the file holds no structure")
    for k, atoms in enumerate(frames):
        atoms.info[SOURCE_KEY] = f"{path}:frame {k}"
    _check_frames(frames)
    if _READ_ONCE is not None:
        _READ_ONCE[key] = [_copy(atoms, atoms.info[SOURCE_KEY]) for atoms in frames]
    return frames


#: lines taken at a time when skipping the atom lines of a frame
_CHUNK_LINES = 1 << 16


def _check_atom_counts(path: Path, lines: Iterator[str]) -> None:
    """Refuse a frame whose atom count (its first line) announces more atom
    lines than the rest of the file holds: ase's reader would read one line per
    announced atom, endlessly for a count such as 999999999999.

    Walks the frame headers as ase's reader finds them (count line, comment
    line, the atom lines, any ``VEC`` lines), in one pass holding at most
    :data:`_CHUNK_LINES` lines; it stops where ase's reader stops (a blank
    line) and leaves any other malformed header to ase's error.
    """
    line_number, frame = 1, 0
    line = next(lines, "")
    while line.strip():
        try:
            count = int(line)
        except ValueError:
            return  # ase's reader names the bad header
        needed, found = 1 + max(count, 0), 0  # the comment line, then one line per atom
        while found < needed:
            chunk = len(list(itertools.islice(lines, min(needed - found, _CHUNK_LINES))))
            found += chunk
            if chunk == 0:
                raise MBEInputError(
                    f"{path}: not a readable extended XYZ file (frame {frame}: line "
                    f"{line_number} announces {count} atoms but the file has {found} more lines)"
                )
        line_number += 1 + needed
        line = next(lines, "")
        while line.lstrip().startswith("VEC"):  # cell vectors (ase checks them)
            line_number += 1
            line = next(lines, "")
        frame += 1


#: frames already read, by (resolved path, modification time, size), while
#: :func:`reading_once` is active; None outside it
_READ_ONCE: dict[tuple[str, int, int], list[ase.Atoms]] | None = None


@contextlib.contextmanager
def reading_once():
    """Within the block, :func:`read_structures` parses and checks each file
    once: reading it again (same path, modification time and size) returns
    copies of the frames read first. For work that reads the same inputs
    several times, such as the plan of a study (every architecture's data
    preparation, then the shared split); the frames are kept in memory until
    the block ends."""
    global _READ_ONCE
    outer = _READ_ONCE
    _READ_ONCE = {} if outer is None else outer
    try:
        yield
    finally:
        _READ_ONCE = outer


def _copy(atoms: ase.Atoms, source: str) -> ase.Atoms:
    """A copy of a frame as read, labels (the single-point results) included."""
    from ase.calculators.singlepoint import SinglePointCalculator

    copy = atoms.copy()
    if atoms.calc is not None:
        copy.calc = SinglePointCalculator(copy, **atoms.calc.results)
    copy.info[SOURCE_KEY] = source
    return copy


#: non-periodic frames of at most this many atoms are checked together
_BATCHED_ATOMS = 32


def _check_frames(frames: list[ase.Atoms]) -> None:
    """Refuse a frame with no atoms (it would count as a parent) and run
    :func:`check_positions` on every frame, in order: the error of the first
    frame refused. The non-periodic frames of 1 to :data:`_BATCHED_ATOMS`
    atoms are screened together, by size (the distances of all their pairs at
    once, a per-frame search tree costing more than the search in small
    frames); the checks then run on the empty, periodic and larger ones and on
    any that the screen flags.
    """
    suspect = np.zeros(len(frames), dtype=bool)
    by_size: dict[int, list[int]] = {}
    for k, atoms in enumerate(frames):
        if 0 < len(atoms) <= _BATCHED_ATOMS and not atoms.pbc.any():
            by_size.setdefault(len(atoms), []).append(k)
        else:
            suspect[k] = True
    for size, same_size in by_size.items():
        first, second = np.triu_indices(size, k=1)
        step = max(1, 2**20 // max(1, len(first)))  # about 1e6 pairs at a time
        for start in range(0, len(same_size), step):
            indices = np.asarray(same_size[start : start + step])
            positions = np.stack([frames[k].positions for k in indices])
            bad = ~np.isfinite(positions).all(axis=(1, 2))
            distances = np.linalg.norm(positions[:, first] - positions[:, second], axis=-1)
            # a margin for rounding: check_positions has the last word
            bad |= (distances <= MIN_DISTANCE * (1 + 1e-6)).any(axis=1)
            suspect[indices[bad]] = True
    for index in np.flatnonzero(suspect):
        if len(frames[index]) == 0:
            raise MBEInputError(f"{describe(frames[index])}: no atoms")
        check_positions(frames[index])


def check_cluster(atoms: ase.Atoms) -> None:
    """Refuse structures the expansion does not apply to: periodic ones."""
    if np.any(atoms.pbc):
        raise MBEInputError(
            f"{describe(atoms)}: field 'pbc' is periodic; the many-body expansion "
            "needs finite clusters (cut clusters with `mtt-mbe sample`)"
        )


def check_positions(atoms: ase.Atoms) -> None:
    """Refuse non-finite positions and two atoms closer than
    :data:`MIN_DISTANCE` (minimum image in periodic directions, whose cell
    vectors must then span them).
    """
    finite = np.isfinite(atoms.positions).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite).tolist()
        raise MBEInputError(
            f"{describe(atoms)}: field 'positions' is not finite for atoms {_first(bad)}"
        )
    if atoms.pbc.any():
        from ase.neighborlist import neighbor_list

        if np.linalg.matrix_rank(atoms.cell[atoms.pbc], tol=MIN_DISTANCE) < atoms.pbc.sum():
            raise MBEInputError(
                f"{describe(atoms)}: field 'cell' is degenerate in a periodic direction "
                f"(pbc {atoms.pbc.tolist()}, lengths {np.round(atoms.cell.lengths(), 4).tolist()})"
            )

        first, second, distances = neighbor_list("ijd", atoms, MIN_DISTANCE)
        close = [(d, i, j) for i, j, d in zip(first, second, distances) if i < j]
    else:
        from scipy.spatial import cKDTree

        pairs = cKDTree(atoms.positions).query_pairs(MIN_DISTANCE, output_type="ndarray")
        close = [(atoms.get_distance(i, j), i, j) for i, j in pairs]
    if close:
        distance, i, j = min(close)
        raise MBEInputError(
            f"{describe(atoms)}: field 'positions' puts atoms {i} and {j} {distance:.3g} Å "
            f"apart, closer than {MIN_DISTANCE} Å ({len(close)} such pairs)"
        )


def _first(indices: list[int], shown: int = 8) -> str:
    """``indices`` for a message, the first ``shown`` of them."""
    more = f" and {len(indices) - shown} more" if len(indices) > shown else ""
    return f"{indices[:shown]}{more}"


def write_structures(path: str | os.PathLike, frames: list[ase.Atoms]) -> None:
    """Write frames as extended XYZ, atomically (a temporary file renamed),
    with the results of their calculators (energy, forces, ...) and without
    :data:`SOURCE_KEY`.

    ase's writer writes the results of the calculator of each frame (it copies
    the frame itself), so the frames are written as they are: ``SOURCE_KEY``
    is taken out of their ``info`` while writing and put back after.
    """
    sources = [atoms.info.pop(SOURCE_KEY, None) for atoms in frames]
    try:
        with atomic_path(path) as tmp:
            ase.io.write(tmp, frames, format="extxyz")
    finally:
        for atoms, source in zip(frames, sources):
            if source is not None:
                atoms.info[SOURCE_KEY] = source


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


def naming_path(error: OSError, path: str | os.PathLike, doing: str) -> OSError:
    """``error`` as an OSError of the same kind naming ``path`` and what
    failed, for the one line of the command line: ``out/m.pt: no space left on
    device (writing the exported model)``."""
    cause = error.strerror or str(error) or type(error).__name__
    return OSError(error.errno, f"{cause[:1].lower()}{cause[1:]} ({doing})", str(path))


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
    """An id for :func:`describe`; an array as ``[0 3 5]``."""
    if isinstance(value, np.ndarray):
        return "[" + " ".join(_entry(x) for x in value.ravel()) + "]"
    return str(value)


def _entry(value) -> str:
    """An entry of an id array: an id as an int, anything else as it is
    (``1e+23``, ``nan``: never a rounded or changed number)."""
    try:
        return str(_whole(value))
    except ValueError:
        return str(value)


def _label(atoms: ase.Atoms, key: str, stored: dict):
    """A label from the attached calculator's results, else from ``stored``."""
    if atoms.calc is not None and key in atoms.calc.results:
        return atoms.calc.results[key]
    return stored.get(key)


def get_energy(atoms: ase.Atoms, key: str = ENERGY_KEY) -> float | None:
    """The labelled energy (eV), or None when the structure has none.

    :raises MBEInputError: for a value that is not a finite number.
    """
    value = _label(atoms, key, atoms.info)
    if value is None:
        return None
    try:
        energy = float(value)
    except (TypeError, ValueError) as error:
        raise MBEInputError(f"{describe(atoms)}: field '{key}' is not a number") from error
    if not np.isfinite(energy):
        raise MBEInputError(f"{describe(atoms)}: field '{key}' is {energy}")
    return energy


def require_energy(atoms: ase.Atoms, key: str = ENERGY_KEY) -> float:
    """The labelled energy (eV) of a structure that must have one."""
    energy = get_energy(atoms, key)
    if energy is None:
        raise MBEInputError(f"{describe(atoms)}: field '{key}' is missing")
    return energy


def get_forces(atoms: ase.Atoms, key: str = FORCES_KEY) -> np.ndarray | None:
    """The labelled forces (eV/Å, shape ``(n_atoms, 3)``), or None.

    :raises MBEInputError: for a wrong shape or a value that is not finite.
    """
    value = _label(atoms, key, atoms.arrays)
    if value is None:
        return None
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise MBEInputError(f"{describe(atoms)}: field '{key}' is not numbers") from error
    if value.shape != (len(atoms), 3):
        raise MBEInputError(
            f"{describe(atoms)}: field '{key}' has shape {value.shape}, expected ({len(atoms)}, 3)"
        )
    finite = np.isfinite(value).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite).tolist()
        raise MBEInputError(
            f"{describe(atoms)}: field '{key}' is not finite for atoms {_first(bad)}"
        )
    return value


#: ids (``mbe_parent``, ``mbe_atoms``, ``mbe_fragment``) are exact integers:
#: an int within int64 (what ase reads as an int; it reads a longer one as a
#: float, and writes an int as its digits, read back as such), or a float that
#: is a whole number of magnitude below 2^53, the floats that stand for one
#: integer only (``1e23`` stands for every integer within 2^23 of it)
_ID_RULE = "ids are ints within int64 or whole floats of magnitude below 2^53"
_INT64 = np.iinfo(np.int64)
_FLOAT_IDS = 2.0**53


def _whole(value) -> int:
    """``value`` as an exact int (see :data:`_ID_RULE`).

    :raises ValueError: for a bool, text, a float that is not a whole number
        (2.5, nan) or not below 2^53 in magnitude (1e23), an int beyond int64,
        or anything else.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if _INT64.min <= value <= _INT64.max:
            return int(value)
    elif isinstance(value, (float, np.floating)):
        if abs(value) < _FLOAT_IDS and float(value).is_integer():
            return int(value)
    raise ValueError(value)


def parent_id(atoms: ase.Atoms) -> int:
    """The ``mbe_parent`` id of a structure, or a one-line error naming it."""
    if PARENT_KEY not in atoms.info:
        raise MBEInputError(f"{describe(atoms)}: field '{PARENT_KEY}' is missing")
    value = atoms.info[PARENT_KEY]
    try:
        return _whole(value)
    except ValueError as error:
        raise MBEInputError(
            f"{describe(atoms)}: field '{PARENT_KEY}' is not an integer (got {value}); {_ID_RULE}"
        ) from error


def subcluster_atoms(atoms: ase.Atoms) -> list[int]:
    """The parent atom indices of a sub-cluster (``info["mbe_atoms"]``)."""
    raw = np.atleast_1d(np.asarray(atoms.info[ATOMS_KEY]))
    indices = []
    for k, x in enumerate(raw):
        try:
            indices.append(_whole(x))
        except ValueError as error:
            raise MBEInputError(
                f"{describe(atoms)}: field '{ATOMS_KEY}' is not a list of integers (got "
                f"{x} at position {k}); {_ID_RULE}"
            ) from error
    if len(indices) != len(atoms) or indices != sorted(set(indices)) or min(indices, default=0) < 0:
        raise MBEInputError(
            f"{describe(atoms)}: field '{ATOMS_KEY}' must list {len(atoms)} distinct "
            "ascending atom indices >= 0"
        )
    return indices


def fragments_of(atoms: ase.Atoms) -> np.ndarray | None:
    """The fragment of each atom (``arrays["mbe_fragment"]``), or None when the
    structure declares none (every atom is a body).

    :raises MBEInputError: unless the array numbers the fragments 0 .. K-1
        with whole numbers, every number used by at least one atom.

    >>> import ase
    >>> water = ase.Atoms("OH2OH2", positions=[[0, 0, 0], [0, 0, 1], [0, 1, 0],
    ...                                        [3, 0, 0], [3, 0, 1], [3, 1, 0]])
    >>> water.arrays["mbe_fragment"] = np.array([0, 0, 0, 1, 1, 1])
    >>> fragments_of(water).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    if FRAGMENT_KEY not in atoms.arrays:
        return None
    raw = np.asarray(atoms.arrays[FRAGMENT_KEY]).reshape(-1)
    try:
        ids = np.array([_whole(x) for x in raw], dtype=np.int64)
    except ValueError as error:
        raise MBEInputError(
            f"{describe(atoms)}: field '{FRAGMENT_KEY}' is not an integer per atom"
        ) from error
    if (ids < 0).any():
        bad = np.flatnonzero(ids < 0).tolist()
        raise MBEInputError(
            f"{describe(atoms)}: field '{FRAGMENT_KEY}' leaves atoms {_first(bad)} in no "
            "fragment (ids must be >= 0)"
        )
    unused = sorted(set(range(int(ids.max()) + 1)) - set(ids.tolist()))
    if unused and not is_subcluster(atoms):
        raise MBEInputError(
            f"{describe(atoms)}: field '{FRAGMENT_KEY}' numbers no atom {_first(unused)}; "
            f"fragments must be numbered 0 .. K-1"
        )
    return ids


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
