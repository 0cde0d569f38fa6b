"""Group labelled parents and sub-clusters back into complete sets per parent.

A :class:`SubclusterSet` holds, for one parent, E(S) for every sub-cluster of a
:class:`~metatrain_mbe.expansion.SubsetPlan` (isolated-atom energies E_1 for the
single atoms, 0 for the empty set) and, when every structure has forces, the
position gradients dE(S)/dr_i = -F_i in the parent's atom indexing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ase
import numpy as np
import torch
from ase.data import atomic_numbers, chemical_symbols

from ..errors import MBEInputError
from ..expansion import (
    DEFAULT_MAX_ATOMS,
    BodyOrderTerms,
    SubsetPlan,
    atoms_of,
    mask_of,
)
from .io import (
    ENERGY_KEY,
    FORCES_KEY,
    PARENT_KEY,
    describe,
    get_forces,
    is_parent,
    is_subcluster,
    parent_id,
    require_energy,
    subcluster_atoms,
)
from .subclusters import assign_parent_ids, check_cluster

__all__ = [
    "SubclusterSet",
    "check_e1",
    "check_geometry",
    "collect_sets",
    "parse_e1",
    "resolve_e1",
]

#: Largest distance (Å) between a sub-cluster atom and the same atom of its
#: parent (after removing a rigid translation) accepted as "the same geometry".
POSITION_TOLERANCE = 1e-4


@dataclass
class SubclusterSet:
    """Reference energies (and gradients) of a parent's sub-clusters.

    :param parent: the parent cluster.
    :param plan: which sub-clusters the tensors hold, in ``plan.masks`` order.
    :param energies: ``(plan.n_subsets,)`` float64 E(S) in eV.
    :param gradients: ``(plan.n_subsets, N, 3)`` float64 dE(S)/dr_i in eV/Å, or
        None when the labels have no forces.
    """

    parent: ase.Atoms
    plan: SubsetPlan
    energies: torch.Tensor
    gradients: torch.Tensor | None

    @property
    def parent_id(self) -> int:
        """The ``mbe_parent`` id of the parent."""
        return int(self.parent.info[PARENT_KEY])

    def terms(self) -> BodyOrderTerms:
        """The body-ordered terms V(S) (and dV(S)/dr) of this set."""
        return BodyOrderTerms.from_energies(
            self.parent_id, self.plan, self.energies, self.gradients
        )


def check_e1(e1: dict[str, float]) -> dict[str, float]:
    """Refuse isolated-atom energies (eV by symbol) with an unknown chemical
    symbol or a non-finite value (ValueError naming the entry).

    >>> check_e1({"Xx": 1.0})
    Traceback (most recent call last):
    ...
    ValueError: 'Xx' is not a chemical symbol
    """
    for symbol, energy in e1.items():
        if symbol not in atomic_numbers or symbol == "X":
            raise ValueError(f"'{symbol}' is not a chemical symbol")
        if not math.isfinite(energy):
            raise ValueError(f"{symbol}={energy} is not a finite energy (eV)")
    return e1


def parse_e1(items: list[str] | None) -> dict[str, float]:
    """Parse ``--e1 H=-13.6 O=-2041.3`` into ``{"H": -13.6, ...}`` (eV).

    >>> parse_e1(["H=-12.44"])
    {'H': -12.44}
    """
    e1 = {}
    for item in items or []:
        symbol, _, value = item.partition("=")
        try:
            e1[symbol] = float(value)
        except ValueError as error:
            raise MBEInputError(
                f"--e1: '{item}' is not SYMBOL=ENERGY (eV), e.g. H=-12.44"
            ) from error
    try:
        return check_e1(e1)
    except ValueError as error:
        raise MBEInputError(f"--e1: {error}") from error


def resolve_e1(
    frames: list[ase.Atoms],
    given: dict[str, float] | None = None,
    energy_key: str = ENERGY_KEY,
) -> dict[str, float]:
    """Isolated-atom energies per species: ``given`` first, else the labelled
    single-atom structures of ``frames`` (which must agree within 1e-6 eV).
    """
    e1 = dict(given or {})
    found: dict[str, tuple[float, ase.Atoms]] = {}
    for atoms in frames:
        if len(atoms) != 1:
            continue
        symbol = atoms.get_chemical_symbols()[0]
        energy = require_energy(atoms, energy_key)
        if symbol in found and abs(found[symbol][0] - energy) > 1e-6:
            raise MBEInputError(
                f"{describe(atoms)}: field '{energy_key}'={energy} disagrees with the "
                f"isolated {symbol} atom of {describe(found[symbol][1])}"
            )
        found[symbol] = (energy, atoms)
    for symbol, (energy, _) in found.items():
        e1.setdefault(symbol, energy)
    return e1


def collect_sets(
    frames: list[ase.Atoms],
    e1: dict[str, float],
    *,
    max_order: int | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    energy_key: str = ENERGY_KEY,
    forces_key: str = FORCES_KEY,
) -> tuple[list[SubclusterSet], list[ase.Atoms]]:
    """Complete labelled sub-cluster sets of the parents in ``frames``.

    :param frames: parents (``mbe_parent``), sub-clusters (``mbe_parent``,
        ``mbe_atoms``) and isolated atoms, in any order.
    :param e1: isolated-atom energy per chemical symbol (eV), see
        :func:`resolve_e1`.
    :param max_order: use only sub-clusters up to this size (default: all, the
        parent included).
    :param max_atoms: largest parent expanded completely without ``max_order``.
    :return: the complete sets, and the parents that have no sub-cluster in
        ``frames`` at all (not analysable, e.g. plain training structures).
    :raises MBEInputError: for periodic structures, sub-clusters without
        parent, mismatched species or positions, missing or NaN labels, missing
        E_1, or an incomplete set (naming the missing atom sets).
    """
    parents = [a for a in frames if is_parent(a)]
    for atoms in parents:
        if PARENT_KEY not in atoms.info:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}' is missing; every structure "
                "must be a parent, a sub-cluster or an isolated atom"
            )
    assign_parent_ids(parents)
    by_id = {int(p.info[PARENT_KEY]): p for p in parents}

    members: dict[int, dict[int, ase.Atoms]] = {pid: {} for pid in by_id}
    for atoms in frames:
        if not is_subcluster(atoms):
            continue
        check_cluster(atoms)
        pid = parent_id(atoms)
        if pid not in by_id:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}'={pid} names no parent in the file"
            )
        indices = subcluster_atoms(atoms)
        check_geometry(atoms, by_id[pid], indices)
        mask = mask_of(indices)
        if mask in members[pid]:
            raise MBEInputError(f"{describe(atoms)}: duplicate of {describe(members[pid][mask])}")
        members[pid][mask] = atoms

    sets, unlabelled = [], []
    for pid, parent in by_id.items():
        if not members[pid]:
            unlabelled.append(parent)
            continue
        sets.append(
            _labelled_set(parent, members[pid], e1, max_order, max_atoms, energy_key, forces_key)
        )
    return sets, unlabelled


def check_geometry(sub: ase.Atoms, parent: ase.Atoms, indices: list[int]) -> None:
    """Refuse a sub-cluster that is not atoms ``indices`` of ``parent``: same
    species, same positions up to a rigid translation (:data:`POSITION_TOLERANCE`).
    """
    if indices[-1] >= len(parent):
        raise MBEInputError(
            f"{describe(sub)}: field 'mbe_atoms' names atom {indices[-1]} but the "
            f"parent {describe(parent)} has {len(parent)} atoms"
        )
    if list(sub.numbers) != list(parent.numbers[indices]):
        raise MBEInputError(
            f"{describe(sub)}: field 'numbers' ({sub.get_chemical_formula()}) does not "
            f"match atoms {indices} of parent {describe(parent)}"
        )
    shift = sub.positions - parent.positions[indices]
    if np.abs(shift - shift.mean(axis=0)).max() > POSITION_TOLERANCE:
        raise MBEInputError(
            f"{describe(sub)}: field 'positions' differs from atoms {indices} of "
            f"parent {describe(parent)}"
        )


def _labelled_set(parent, members, e1, max_order, max_atoms, energy_key, forces_key):
    n = len(parent)
    try:
        plan = SubsetPlan(n, max_order, max_atoms=max_atoms)
    except ValueError as error:
        raise MBEInputError(f"{describe(parent)}: {error}") from error
    for z in sorted(set(parent.numbers)):
        if chemical_symbols[z] not in e1:
            raise MBEInputError(
                f"{describe(parent)}: no isolated-atom energy E_1 for "
                f"{chemical_symbols[z]}; add a labelled single-atom structure or "
                f"pass --e1 {chemical_symbols[z]}=ENERGY"
            )
    if plan.is_complete:
        members = {**members, (1 << n) - 1: parent}
    needed = [int(m) for m, o in zip(plan.masks.tolist(), plan.orders.tolist()) if o >= 2]
    missing = [m for m in needed if m not in members]
    if missing:
        shown = ", ".join(str(atoms_of(m)) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise MBEInputError(
            f"{describe(parent)}: incomplete sub-cluster set, missing atom sets {shown}{more}"
        )

    # single atoms: the parent's own order-1 labels where given, else E_1
    singles = [1 << i for i in range(n)]
    symbols = parent.get_chemical_symbols()
    labelled = {m: require_energy(members[m], energy_key) for m in singles if m in members}
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    energies[plan.index(torch.tensor(singles))] = torch.tensor(
        [labelled.get(1 << i, e1[symbols[i]]) for i in range(n)], dtype=torch.float64
    )
    rows = plan.index(torch.tensor(needed, dtype=torch.int64))
    energies[rows] = torch.tensor(
        [require_energy(members[m], energy_key) for m in needed], dtype=torch.float64
    )

    forces = [get_forces(members[m], forces_key) for m in needed]
    have = [f is not None for f in forces]
    if any(have) and not all(have):
        lacking = members[needed[have.index(False)]]
        raise MBEInputError(
            f"{describe(lacking)}: field '{forces_key}' is missing while other "
            f"structures of parent {describe(parent)} have forces"
        )
    gradients = None
    if all(have):
        gradients = torch.zeros((plan.n_subsets, n, 3), dtype=torch.float64)
        for row, mask, f in zip(rows.tolist(), needed, forces):
            gradients[row, atoms_of(mask)] = -torch.from_numpy(f)
    return SubclusterSet(parent, plan, energies, gradients)
