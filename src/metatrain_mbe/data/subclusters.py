"""Parents and their canonical sub-clusters as ase structures.

>>> import ase
>>> parent = ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 1], [0, 1, 0]])
>>> parents = assign_parent_ids([parent])
>>> subs = enumerate_subclusters(parents, orders=[2])
>>> [(s.info["mbe_parent"], s.info["mbe_atoms"].tolist()) for s in subs]
[(0, [0, 1]), (0, [0, 2]), (0, [1, 2])]

With fragments (``mbe_fragment``), the bodies are molecules: sub-clusters are
unions of whole molecules, from single molecules (the one-body terms) up.

>>> dimer = ase.Atoms("H4", positions=[[0, 0, 0], [0, 0, 0.74], [3, 0, 0], [3, 0, 0.74]])
>>> dimer.arrays["mbe_fragment"] = np.array([0, 0, 1, 1])
>>> subs = enumerate_subclusters(assign_parent_ids([dimer]))
>>> [s.info["mbe_atoms"].tolist() for s in subs]
[[0, 1], [2, 3]]

Charge and spin: a sub-cluster does not share its parent's total
``info["charge"]`` or ``info["spin"]`` (the multiplicity 2S + 1). It carries the
parent's per-atom arrays for its atoms, so its charge is the sum of the
parent's ``initial_charges`` over them (also set as its ``info["charge"]``) and
its 2S the sum of the parent's ``initial_magmoms``. A parent whose totals its
parts' cannot be derived from is refused (:func:`check_parent_state`).
"""

from __future__ import annotations

import ase
import numpy as np
import torch
from ase.calculators.calculator import all_properties

from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS, MAX_SUBCLUSTERS, Cutoffs, SubsetPlan
from .io import (
    ATOMS_KEY,
    CHARGE_KEY,
    CHARGES_ARRAY,
    FRAGMENT_KEY,
    LABEL_KEYS,
    MAGMOMS_ARRAY,
    ORDER_KEY,
    PARENT_KEY,
    SPIN_KEY,
    STATE_KEYS,
    check_cluster,
    describe,
    fragments_of,
    parent_id,
)

__all__ = [
    "MAX_SUBCLUSTERS",
    "assign_parent_ids",
    "bodies_of",
    "body_pairs",
    "check_parent_state",
    "default_orders",
    "enumerate_subclusters",
    "isolated_atoms",
    "parent_plan",
    "parse_cutoffs",
    "parse_orders",
    "parse_ranges",
]


def bodies_of(atoms: ase.Atoms) -> list[list[int]]:
    """The atoms of each body of a structure, ascending: its fragments
    (``mbe_fragment``) when it declares them, else one body per atom.
    """
    fragments = fragments_of(atoms)
    if fragments is None:
        return [[i] for i in range(len(atoms))]
    return [np.flatnonzero(fragments == k).tolist() for k in range(int(fragments.max()) + 1)]


def body_pairs(parent: ase.Atoms, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs of bodies of a cluster within ``cutoff`` (Å) and their
    distances: for molecules, the distance of their closest atoms.

    One neighbour list over the atoms (vesin), O(atoms) at a fixed cutoff.

    :return: ``(P, 2)`` int64 body pairs ``i < j`` and ``(P,)`` float64 distances.
    """
    from vesin import NeighborList

    fragments = fragments_of(parent)
    body = np.arange(len(parent)) if fragments is None else fragments
    if len(parent) < 2:
        return torch.zeros((0, 2), dtype=torch.int64), torch.zeros(0, dtype=torch.float64)
    i, j, d = NeighborList(cutoff=cutoff, full_list=False).compute(
        np.asarray(parent.positions, dtype=np.float64), np.zeros((3, 3)), False, "ijd"
    )
    bi, bj = body[i], body[j]
    apart = bi != bj
    low, high = np.minimum(bi, bj)[apart], np.maximum(bi, bj)[apart]
    n_bodies = int(body.max()) + 1
    keys, inverse = np.unique(low * n_bodies + high, return_inverse=True)
    closest = np.full(len(keys), np.inf)
    np.minimum.at(closest, inverse, d[apart])
    pairs = np.stack([keys // n_bodies, keys % n_bodies], 1)
    return torch.from_numpy(pairs.astype(np.int64)), torch.from_numpy(closest)


def parent_plan(
    parent: ase.Atoms,
    max_order: int | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    cutoffs: Cutoffs | None = None,
) -> SubsetPlan:
    """The :class:`~metatrain_mbe.expansion.SubsetPlan` of a parent: over its
    fragments when it declares them (``mbe_fragment``), else over its atoms.

    :param max_order: largest sub-cluster size, in bodies (default: complete).
    :param max_atoms: largest number of bodies expanded completely.
    :param cutoffs: distance screening per order (Å; bodies within R_m of
        each other, closest atoms for molecules).
    :raises MBEInputError: naming the parent, ``--max-order`` and ``--cutoff``
        when the plan is refused.
    """
    fragments = fragments_of(parent)
    options: dict = {"max_atoms": max_atoms, "cutoffs": cutoffs}
    if cutoffs:
        options["pairs"], options["distances"] = body_pairs(parent, cutoffs.largest)
    try:
        if fragments is None:
            return SubsetPlan(len(parent), max_order, **options)
        return SubsetPlan.of_fragments(fragments, max_order, **options)
    except ValueError as error:
        raise MBEInputError(f"{describe(parent)}: {error}") from error


def default_orders(parent: ase.Atoms) -> range:
    """The sub-cluster sizes a parent's complete set holds besides the parent:
    2 .. N-1 atoms (single atoms are the isolated-atom references), or
    1 .. K-1 molecules when it declares K fragments (each single molecule, in
    its parent geometry, is a one-body term to label).
    """
    first = 1 if FRAGMENT_KEY in parent.arrays else 2
    return range(first, len(bodies_of(parent)))


def assign_parent_ids(parents: list[ase.Atoms]) -> list[ase.Atoms]:
    """Give every parent an ``mbe_parent`` id, checking that ids are unique and
    that all parents count bodies the same way (all with ``mbe_fragment`` or
    none).

    Parents that have an id keep it; the others get their position in the
    list. Returns the same structures (modified in place).
    """
    seen: dict[int, ase.Atoms] = {}
    for k, atoms in enumerate(parents):
        check_cluster(atoms)
        fragments_of(atoms)  # a malformed array is refused here
        declares = FRAGMENT_KEY in atoms.arrays
        if declares != (FRAGMENT_KEY in parents[0].arrays):
            fragmented, plain = (atoms, parents[0]) if declares else (parents[0], atoms)
            raise MBEInputError(
                f"{describe(plain)}: field '{FRAGMENT_KEY}' is missing while "
                f"{describe(fragmented)} declares fragments; one file counts bodies "
                "one way (all parents with fragments, or none)"
            )
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


def parse_cutoffs(text: str | None, option: str = "--cutoff") -> Cutoffs:
    """:meth:`Cutoffs.parse <metatrain_mbe.cutoffs.Cutoffs.parse>` with a
    one-line :class:`MBEInputError` naming ``option``.

    >>> parse_cutoffs("3:8,4:6").at(4)
    6.0
    """
    try:
        return Cutoffs.parse(text)
    except ValueError as error:
        raise MBEInputError(f"{option}: {error}") from error


def parse_orders(text: str, n_max: int | None = None, smallest: int = 2) -> list[int]:
    """Parse sub-cluster orders (:func:`parse_ranges`), all >= ``smallest`` and
    <= ``n_max`` (orders count bodies: 1 is a single molecule when the bodies
    are fragments)."""
    orders = parse_ranges(text, "--orders")
    if not orders or min(orders) < smallest or (n_max is not None and max(orders) > n_max):
        limit = f"{smallest}..{n_max}" if n_max is not None else f">= {smallest}"
        raise MBEInputError(f"--orders: '{text}' must select orders in {limit}")
    return sorted(orders)


def enumerate_subclusters(
    parents: list[ase.Atoms], orders: list[int] | None = None, cutoffs: Cutoffs | None = None
) -> list[ase.Atoms]:
    """All canonical sub-clusters of the given orders of every parent, kept by
    the screening ``cutoffs`` when given (see :func:`parent_plan`).

    :param parents: parent clusters with ``mbe_parent`` ids.
    :param orders: sub-cluster sizes m, in bodies (default: 2 .. N-1 atoms of
        each parent, or 1 .. K-1 molecules of a parent with K fragments).
    :return: sub-clusters grouped by parent, then order, then body indices.
        Each keeps the parent's positions, species, per-atom arrays (sliced
        to its atoms: ``mbe_fragment``, ``initial_charges``,
        ``initial_magmoms``, ...) and info keys other than labels and the
        parent's total charge and spin (:data:`STATE_KEYS`), and carries
        ``mbe_parent``, ``mbe_atoms`` and ``mbe_order``, and
        ``info["charge"]``, the sum of its ``initial_charges`` (e), when the
        parent has per-atom charges. Energies, forces and other computed
        properties are not copied.
    :raises MBEInputError: before building any, when there would be more than
        :data:`MAX_SUBCLUSTERS`, or for a parent whose sub-clusters' charge or
        spin cannot be derived (:func:`check_parent_state`).
    """
    plans = []
    for parent in parents:
        check_parent_state(parent)
        sizes = default_orders(parent) if orders is None else orders
        plans.append((sizes, parent_plan(parent, max(sizes, default=1), cutoffs=cutoffs)))
    counts = [sum(plan.kept(m) for m in sizes) for sizes, plan in plans]
    if sum(counts) > MAX_SUBCLUSTERS:
        largest = parents[counts.index(max(counts))]
        raise MBEInputError(
            f"{describe(largest)}: {len(bodies_of(largest))} bodies, {max(counts)} "
            f"sub-clusters; {len(parents)} parents give {sum(counts)}, more than the "
            f"{MAX_SUBCLUSTERS} enumerated at once; choose smaller --orders, a --cutoff "
            "or fewer parents"
        )
    subclusters = []
    for parent, (sizes, plan) in zip(parents, plans):
        extra = {
            key: v
            for key, v in parent.info.items()
            if key not in LABEL_KEYS and key not in STATE_KEYS and not key.startswith("_")
        }
        arrays = {
            name: values
            for name, values in parent.arrays.items()
            if name not in ("numbers", "positions") and name not in all_properties
        }
        fragments = fragments_of(parent)  # the ids as read, checked
        for m in sizes:
            for position in plan.positions(m).tolist() if m <= plan.max_order else []:
                atoms = plan.atoms_in(position)
                sub = ase.Atoms(
                    numbers=parent.numbers[atoms], positions=parent.positions[atoms], pbc=False
                )
                for name, values in arrays.items():
                    sub.new_array(name, values[atoms])
                sub.info.update(extra)
                if sub.has(CHARGES_ARRAY):
                    sub.info[CHARGE_KEY] = _total(sub.get_initial_charges())
                sub.info[PARENT_KEY] = int(parent.info[PARENT_KEY])
                sub.info[ATOMS_KEY] = np.array(atoms, dtype=int)
                sub.info[ORDER_KEY] = m
                if fragments is not None:
                    sub.arrays[FRAGMENT_KEY] = fragments[atoms]
                subclusters.append(sub)
    return subclusters


def check_parent_state(parent: ase.Atoms) -> None:
    """Refuse a parent whose sub-clusters' charge or spin cannot be derived
    from it: an ``info["charge"]`` other than 0 without per-atom
    ``initial_charges``, and an ``info["spin"]`` other than 1 or 2 (a
    multiplicity above the lowest of any electron count, which is what a
    sub-cluster gets without moments) without non-zero per-atom
    ``initial_magmoms``.

    :raises MBEInputError: one line naming the parent and field.
    """
    charge = parent.info.get(CHARGE_KEY, 0)
    if not (_is_number(charge) and charge == 0) and not parent.has(CHARGES_ARRAY):
        raise MBEInputError(
            f"{describe(parent)}: field '{CHARGE_KEY}'={charge} is the parent's total charge, "
            "from which sub-cluster charges cannot be derived; give per-atom "
            f"'{CHARGES_ARRAY}' (e.g. each molecule's formal charge on its atoms)"
        )
    spin = parent.info.get(SPIN_KEY, 1)
    if not (_is_number(spin) and spin in (1, 2)) and not np.any(
        parent.get_initial_magnetic_moments()
    ):
        raise MBEInputError(
            f"{describe(parent)}: field '{SPIN_KEY}'={spin} is the parent's spin multiplicity "
            "2S + 1, from which sub-cluster spins cannot be derived; give per-atom "
            f"'{MAGMOMS_ARRAY}' (their sum over a sub-cluster is its 2S)"
        )


def _is_number(value) -> bool:
    """Whether ``value`` is a real number (not a bool, text or array)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _total(charges: np.ndarray) -> int | float:
    """The sum of per-atom charges (e) to 1e-6 e: an int when whole (a float
    otherwise, which ``mtt-mbe label`` refuses naming the sub-cluster)."""
    total = round(float(np.sum(charges)), 6)
    return int(total) if total.is_integer() else total


def isolated_atoms(frames: list[ase.Atoms]) -> list[ase.Atoms]:
    """One single-atom structure per species of the ``frames`` whose bodies
    are atoms (for E_1); frames with fragments need none, their one-body terms
    are their own fragments, sub-clusters of order 1."""
    species = sorted(
        {int(z) for atoms in frames if FRAGMENT_KEY not in atoms.arrays for z in atoms.numbers}
    )
    return [ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]], pbc=False) for z in species]
