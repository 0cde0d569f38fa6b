"""Parents and their canonical sub-clusters as ase structures.

>>> import ase
>>> parent = ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 1], [0, 1, 0]])
>>> parents = assign_parent_ids([parent])
>>> subs = enumerate_subclusters(parents, orders=[2])
>>> [(s.info["mbe_parent"], s.info["mbe_atoms"].tolist()) for s in subs]
[(0, [0, 1]), (0, [0, 2]), (0, [1, 2])]
"""

from __future__ import annotations

import itertools
import math

import ase
import numpy as np

from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS
from .io import ATOMS_KEY, LABEL_KEYS, ORDER_KEY, PARENT_KEY, describe, parent_id

__all__ = [
    "MAX_SUBCLUSTERS",
    "assign_parent_ids",
    "check_cluster",
    "enumerate_subclusters",
    "isolated_atoms",
    "parse_orders",
    "parse_ranges",
]

#: most sub-clusters :func:`enumerate_subclusters` writes in one call: every
#: sub-cluster of a parent of ``DEFAULT_MAX_ATOMS`` atoms (the largest one
#: ``mtt-mbe analyze`` expands completely); each is an ase structure in memory
MAX_SUBCLUSTERS = 2**DEFAULT_MAX_ATOMS


def check_cluster(atoms: ase.Atoms) -> None:
    """Refuse structures the expansion does not apply to: periodic ones."""
    if np.any(atoms.pbc):
        raise MBEInputError(
            f"{describe(atoms)}: field 'pbc' is periodic; the many-body expansion "
            "needs finite clusters (cut clusters with `mtt-mbe sample`)"
        )


def assign_parent_ids(parents: list[ase.Atoms]) -> list[ase.Atoms]:
    """Give every parent an ``mbe_parent`` id, checking that ids are unique.

    Parents that have an id keep it; the others get their position in the
    list. Returns the same structures (modified in place).
    """
    seen: dict[int, ase.Atoms] = {}
    for k, atoms in enumerate(parents):
        check_cluster(atoms)
        if ATOMS_KEY in atoms.info:
            raise MBEInputError(
                f"{describe(atoms)}: field '{ATOMS_KEY}' marks a sub-cluster, "
                "expected a parent cluster"
            )
        atoms.info.setdefault(PARENT_KEY, k)
        pid = parent_id(atoms)
        if pid in seen:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}'={pid} is also used by "
                f"{describe(seen[pid])}"
            )
        atoms.info[PARENT_KEY] = pid
        seen[pid] = atoms
    return parents


def parse_ranges(text: str, option: str) -> list[int]:
    """Parse inclusive integer ranges like ``"2:7"``, ``"3"`` or ``"0:11,200:211"``.

    >>> parse_ranges("2:4,9", "--orders")
    [2, 3, 4, 9]
    """
    values: set[int] = set()
    try:
        for part in text.split(","):
            if ":" in part:
                low, high = part.split(":")
                values.update(range(int(low), int(high) + 1))
            else:
                values.add(int(part))
    except ValueError as error:
        raise MBEInputError(
            f"{option}: '{text}' is not a range such as 2:7 or 0:11,200:211"
        ) from error
    return sorted(values)


def parse_orders(text: str, n_max: int | None = None) -> list[int]:
    """Parse sub-cluster orders (:func:`parse_ranges`), all >= 2 and <= ``n_max``."""
    orders = parse_ranges(text, "--orders")
    if not orders or min(orders) < 2 or (n_max is not None and max(orders) > n_max):
        limit = f"2..{n_max}" if n_max is not None else ">= 2"
        raise MBEInputError(f"--orders: '{text}' must select orders in {limit}")
    return sorted(orders)


def enumerate_subclusters(
    parents: list[ase.Atoms], orders: list[int] | None = None
) -> list[ase.Atoms]:
    """All canonical sub-clusters of the given orders of every parent.

    :param parents: parent clusters with ``mbe_parent`` ids.
    :param orders: sub-cluster sizes m (default: 2 .. N-1 of each parent).
    :return: sub-clusters grouped by parent, then order, then atom indices. Each
        keeps the parent's positions, species and non-label info keys (such as a
        density ``regime``), and carries ``mbe_parent``, ``mbe_atoms`` and
        ``mbe_order``. Energies and forces are not copied.
    :raises MBEInputError: before building any, when there would be more than
        :data:`MAX_SUBCLUSTERS`.
    """
    counts = [
        sum(math.comb(len(p), m) for m in (orders if orders is not None else range(2, len(p))))
        for p in parents
    ]
    if sum(counts) > MAX_SUBCLUSTERS:
        largest = parents[counts.index(max(counts))]
        raise MBEInputError(
            f"{describe(largest)}: {len(largest)} atoms, {max(counts)} sub-clusters; "
            f"{len(parents)} parents give {sum(counts)}, more than the {MAX_SUBCLUSTERS} "
            f"(2^{DEFAULT_MAX_ATOMS}) enumerated at once; choose smaller orders or fewer parents"
        )
    subclusters = []
    for parent in parents:
        n = len(parent)
        extra = {
            k: v for k, v in parent.info.items() if k not in LABEL_KEYS and not k.startswith("_")
        }
        for m in orders if orders is not None else range(2, n):
            for atoms in itertools.combinations(range(n), m):
                sub = ase.Atoms(
                    numbers=parent.numbers[list(atoms)],
                    positions=parent.positions[list(atoms)],
                    pbc=False,
                )
                sub.info.update(extra)
                sub.info[PARENT_KEY] = int(parent.info[PARENT_KEY])
                sub.info[ATOMS_KEY] = np.array(atoms, dtype=int)
                sub.info[ORDER_KEY] = m
                subclusters.append(sub)
    return subclusters


def isolated_atoms(frames: list[ase.Atoms]) -> list[ase.Atoms]:
    """One single-atom structure per species found in ``frames`` (for E_1)."""
    species = sorted({int(z) for atoms in frames for z in atoms.numbers})
    return [ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]], pbc=False) for z in species]
