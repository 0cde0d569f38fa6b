"""Group labelled parents and sub-clusters back into complete sets per parent.

A :class:`SubclusterSet` holds, for one parent, E(S) for every sub-cluster of a
:class:`~metatrain_mbe.expansion.SubsetPlan` (0 for the empty set) and, when
every structure has forces, the position gradients dE(S)/dr_i = -F_i in the
parent's atom indexing. The one-body terms are the labelled single bodies: the
isolated-atom energies E_1 when atoms are the bodies (looked up by species
unless the file labels the parent's single atoms), each fragment's own label
in its parent geometry when the parent declares fragments (``mbe_fragment``).

Every labelled structure of an expansion must come from one level of theory:
:func:`check_one_theory` compares their ``mbe_theory`` fields (written by
``mtt-mbe label``; a structure without one counts as a level of its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ase
import numpy as np
import torch
from ase.data import atomic_numbers

from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS, BodyOrderTerms, Cutoffs, SubsetPlan
from .io import (
    ATOMS_KEY,
    ENERGY_KEY,
    FORCES_KEY,
    FRAGMENT_KEY,
    PARENT_KEY,
    THEORY_KEY,
    check_cluster,
    describe,
    fragments_of,
    get_energy,
    get_forces,
    is_parent,
    is_subcluster,
    parent_id,
    require_energy,
    subcluster_atoms,
)
from .subclusters import assign_parent_ids, parent_plan

__all__ = [
    "SubclusterSet",
    "body_indices",
    "check_e1",
    "check_geometry",
    "check_one_theory",
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
    :param plan: which sub-clusters the tensors hold, in plan order.
    :param energies: ``(plan.n_subsets,)`` float64 E(S) in eV.
    :param gradients: ``(n_rows, 3)`` float64 dE(S)/dr_i in eV/Å in the plan's
        atom rows (:meth:`~metatrain_mbe.expansion.SubsetPlan.atom_rows`), or
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


def check_one_theory(frames: list[ase.Atoms], energy_key: str = ENERGY_KEY) -> None:
    """Refuse labelled structures (those with an energy) of different levels
    of theory: a different ``mbe_theory`` field, or one with the field and
    one without.

    :raises MBEInputError: naming both structures and the settings that differ.
    """
    first: ase.Atoms | None = None
    for atoms in frames:
        if get_energy(atoms, energy_key) is None:
            continue
        if first is None:
            first = atoms
        elif atoms.info.get(THEORY_KEY) != first.info.get(THEORY_KEY):
            raise MBEInputError(
                f"{describe(atoms)}: field '{THEORY_KEY}' "
                f"{_theory_difference(atoms.info.get(THEORY_KEY), first.info.get(THEORY_KEY))} "
                f"of {describe(first)}: every labelled structure of an expansion must be "
                "labelled at one level of theory (label them with one `mtt-mbe label` setting)"
            )


def _theory_difference(theory: str | None, other: str | None) -> str:
    """What differs between two ``mbe_theory`` values, as ``'a' (not 'b')``."""
    if theory is None or other is None:
        return f"{theory or 'missing'} differs from the {other or 'missing'}"
    mine, theirs = theory.split(";"), other.split(";")
    changed = [item for item in mine if item not in theirs]
    before = [item for item in theirs if item not in mine]
    return f"{','.join(changed) or theory} differs from the {','.join(before) or other}"


def collect_sets(
    frames: list[ase.Atoms],
    e1: dict[str, float],
    *,
    max_order: int | None = None,
    max_atoms: int = DEFAULT_MAX_ATOMS,
    cutoffs: Cutoffs | None = None,
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
    :param cutoffs: distance screening: a set is complete when it labels every
        sub-cluster of the screened family; other labelled sub-clusters are
        not used.
    :return: the complete sets, and the parents that have no sub-cluster in
        ``frames`` at all (not analysable, e.g. plain training structures).
    :raises MBEInputError: for labels of several levels of theory
        (:func:`check_one_theory`), periodic structures, sub-clusters without
        parent, mismatched species or positions, missing or NaN labels, missing
        E_1, or an incomplete set (naming the missing atom sets).
    """
    check_one_theory(frames, energy_key)
    parents = [a for a in frames if is_parent(a)]
    for atoms in parents:
        if PARENT_KEY not in atoms.info:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}' is missing; every structure "
                "must be a parent, a sub-cluster or an isolated atom"
            )
    assign_parent_ids(parents)
    by_id = {int(p.info[PARENT_KEY]): p for p in parents}

    members: dict[int, dict[tuple[int, ...], ase.Atoms]] = {pid: {} for pid in by_id}
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
        bodies = body_indices(atoms, by_id[pid], indices)
        if bodies in members[pid]:
            raise MBEInputError(f"{describe(atoms)}: duplicate of {describe(members[pid][bodies])}")
        members[pid][bodies] = atoms

    sets, unlabelled = [], []
    for pid, parent in by_id.items():
        if not members[pid]:
            unlabelled.append(parent)
            continue
        sets.append(
            _labelled_set(
                parent_plan(parent, max_order, max_atoms, cutoffs),
                parent,
                members[pid],
                e1,
                energy_key,
                forces_key,
            )
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


def body_indices(sub: ase.Atoms, parent: ase.Atoms, indices: list[int]) -> tuple[int, ...]:
    """The ascending parent bodies of a sub-cluster made of its atoms
    ``indices``: atoms, or fragments when the parent declares them.

    :raises MBEInputError: for a sub-cluster that holds part of a fragment, or
        whose own ``mbe_fragment`` disagrees with its parent's.
    """
    fragments = fragments_of(parent)
    own = fragments_of(sub)
    if fragments is None:
        if own is not None:
            raise MBEInputError(
                f"{describe(sub)}: field '{FRAGMENT_KEY}' declares fragments but its "
                f"parent {describe(parent)} has none"
            )
        return tuple(indices)
    if own is not None and own.tolist() != fragments[indices].tolist():
        raise MBEInputError(
            f"{describe(sub)}: field '{FRAGMENT_KEY}' differs from its parent's for atoms {indices}"
        )
    bodies = sorted(set(fragments[indices].tolist()))
    whole = np.flatnonzero(np.isin(fragments, bodies)).tolist()
    if whole != indices:
        split = sorted(set(fragments[sorted(set(whole) - set(indices))].tolist()))
        raise MBEInputError(
            f"{describe(sub)}: field '{ATOMS_KEY}' holds part of fragments {split} of "
            f"parent {describe(parent)}; sub-clusters are unions of whole fragments"
        )
    return tuple(bodies)


def _labelled_set(plan, parent, members, e1, energy_key, forces_key):
    """The :class:`SubclusterSet` of ``plan`` from the labelled ``members``
    (structures by ascending body indices)."""
    if plan.is_complete:
        members = {**members, tuple(range(plan.n_bodies)): parent}

    # single-atom bodies not labelled in the file: the isolated-atom energy E_1
    symbols = parent.get_chemical_symbols()
    looked_up = {}
    for position in plan.positions(1).tolist():
        atoms = plan.atoms_in(position)
        if tuple(plan.bodies(position)) in members or len(atoms) > 1:
            continue
        if symbols[atoms[0]] not in e1:
            raise MBEInputError(
                f"{describe(parent)}: no isolated-atom energy E_1 for "
                f"{symbols[atoms[0]]}; add a labelled single-atom structure or "
                f"pass --e1 {symbols[atoms[0]]}=ENERGY"
            )
        looked_up[position] = e1[symbols[atoms[0]]]
    needed = [k for k in range(1, plan.n_subsets) if k not in looked_up]
    keys = {k: tuple(plan.bodies(k)) for k in needed}
    missing = [keys[k] for k in needed if keys[k] not in members]
    if missing:
        kind = "atom" if plan.is_atomic else "fragment"
        shown = ", ".join(str(list(m)) for m in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise MBEInputError(
            f"{describe(parent)}: incomplete sub-cluster set, missing {kind} sets {shown}{more}"
        )

    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    for position, energy in looked_up.items():
        energies[position] = energy
    energies[needed] = torch.tensor(
        [require_energy(members[keys[k]], energy_key) for k in needed], dtype=torch.float64
    )

    forces = [get_forces(members[keys[k]], forces_key) for k in needed]
    have = [f is not None for f in forces]
    if any(have) and not all(have):
        lacking = members[keys[needed[have.index(False)]]]
        raise MBEInputError(
            f"{describe(lacking)}: field '{forces_key}' is missing while other "
            f"structures of parent {describe(parent)} have forces"
        )
    gradients = None
    if all(have):
        _, _, start = plan.atom_rows()
        gradients = torch.zeros((int(start[-1]), 3), dtype=torch.float64)
        for k, f in zip(needed, forces):
            gradients[start[k] : start[k + 1]] = -torch.from_numpy(f)
    return SubclusterSet(parent, plan, energies, gradients)
