"""Sub-cluster augmentation: inject complete labelled sub-cluster sets into a
training set, a proportion at a time.

The proportion ``p`` is the fraction of the available labelled sub-clusters
(those of the training parents, restricted to the chosen orders) that is
injected. It is taken parent by parent: a parent's set of sub-clusters is
injected completely or not at all. With ``stratify_by`` each group (e.g. density
regime) contributes its own share ``p``; the number of parents per group follows
the largest-remainder rule, so for parents of equal size the injected count is
within half a set of ``p`` times the available count.

>>> import ase
>>> from metatrain_mbe.data.subclusters import enumerate_subclusters
>>> parents = [ase.Atoms("H3", positions=[[0, 0, 0], [0, 0, 1], [0, 1, 0]],
...                      info={"mbe_parent": k}) for k in range(4)]
>>> sets = subcluster_sets(enumerate_subclusters(parents), parents)
>>> chosen = choose_injected_parents(sets, parents, proportion=0.5, seed=0)
>>> len(chosen), sum(len(sets[pid]) for pid in chosen)
(2, 6)
"""

from __future__ import annotations

import math
from collections.abc import Collection

import ase
import numpy as np

from ..errors import MBEInputError
from ..expansion import Cutoffs
from .io import PARENT_KEY, describe, parent_id, subcluster_atoms
from .sets import body_indices, check_geometry
from .splitting import group_parents
from .subclusters import bodies_of, default_orders, parent_plan

__all__ = ["injected_subclusters", "choose_injected_parents", "subcluster_sets"]


def subcluster_sets(
    subclusters: list[ase.Atoms],
    parents: list[ase.Atoms],
    orders: Collection[int] | None = None,
    cutoffs: Cutoffs | None = None,
) -> dict[int, list[ase.Atoms]]:
    """Group sub-clusters into complete sets, one per parent id.

    :param subclusters: structures with ``mbe_parent`` and ``mbe_atoms``.
    :param parents: every parent the sub-clusters may refer to.
    :param orders: sub-cluster sizes m to keep, in bodies (default: every size
        but the parent's, :func:`~.subclusters.default_orders`); other sizes
        are dropped.
    :param cutoffs: distance screening: a set is complete when it holds every
        sub-cluster of the screened family (``mbe.cutoff``); sub-clusters
        outside the family are dropped.
    :return: for each parent with at least one kept sub-cluster, its sub-clusters
        sorted by order then body indices.
    :raises MBEInputError: for a sub-cluster whose parent is missing, a duplicate,
        or a set missing some sub-cluster of a requested order (the request asks
        for more than is labelled).
    """
    by_id = {int(p.info[PARENT_KEY]): p for p in parents}
    n_bodies = {pid: len(bodies_of(p)) for pid, p in by_id.items()}
    members: dict[int, dict[tuple[int, ...], ase.Atoms]] = {}
    for atoms in subclusters:
        pid = parent_id(atoms)
        if pid not in by_id:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}'={pid} names no parent of the "
                "training, validation or test sets"
            )
        indices = subcluster_atoms(atoms)
        check_geometry(atoms, by_id[pid], indices)
        bodies = body_indices(atoms, by_id[pid], indices)
        if len(bodies) >= n_bodies[pid] or (orders is not None and len(bodies) not in orders):
            continue
        kept = members.setdefault(pid, {})
        if bodies in kept:
            raise MBEInputError(f"{describe(atoms)}: duplicate of {describe(kept[bodies])}")
        kept[bodies] = atoms
    sets = {}
    for pid in sorted(members):
        n = n_bodies[pid]
        natural = default_orders(by_id[pid])
        wanted = [m for m in (orders or natural) if natural.start <= m < n]
        family = _family(by_id[pid], wanted, cutoffs)
        for m in wanted:
            have = sum(1 for bodies in members[pid] if len(bodies) == m and bodies in family)
            needed = sum(1 for bodies in family if len(bodies) == m)
            if have != needed:
                screened = " of the screened family (mbe.cutoff)" if cutoffs else ""
                raise MBEInputError(
                    f"{describe(by_id[pid])}: {have} of {needed} sub-clusters of "
                    f"order {m}{screened} are labelled; mbe.orders asks for complete sets"
                )
        chosen = [k for k in members[pid] if k in family]
        sets[pid] = [members[pid][k] for k in sorted(chosen, key=lambda k: (len(k), k))]
    return sets


def _family(parent: ase.Atoms, orders: list[int], cutoffs: Cutoffs | None) -> set[tuple[int, ...]]:
    """The body tuples of ``orders`` that the (screened) plan of ``parent`` keeps."""
    if not orders:
        return set()
    plan = parent_plan(parent, max(orders), cutoffs=cutoffs)
    return {tuple(row) for m in orders if m <= plan.max_order for row in plan.members[m].tolist()}


def choose_injected_parents(
    sets: dict[int, list[ase.Atoms]],
    parents: list[ase.Atoms],
    *,
    proportion: float,
    seed: int,
    stratify_by: str | None = None,
) -> list[int]:
    """Choose the parents whose complete sets are injected.

    :param sets: complete sets of the candidate parents (see
        :func:`subcluster_sets`); only these parents are candidates.
    :param parents: the parent structures (for the stratification key).
    :param proportion: fraction (0..1) of the candidate sets to inject.
    :param seed: the same inputs and seed give the same choice.
    :param stratify_by: parent info key whose groups each contribute ``proportion``.
    :return: sorted ids of the chosen parents.
    :raises MBEInputError: when ``proportion > 0`` selects no complete set.
    """
    candidates = [p for p in parents if int(p.info[PARENT_KEY]) in sets]
    if proportion > 0 and not candidates:
        raise MBEInputError(
            f"mbe.proportion: {proportion} requested but no training parent has labelled "
            "sub-clusters"
        )
    groups = list(group_parents(candidates, stratify_by).values())
    total = math.floor(proportion * len(candidates) + 0.5)  # half up, not to even
    if proportion > 0 and total == 0:
        raise MBEInputError(
            f"mbe.proportion: {proportion} of {len(candidates)} labelled training parents "
            f"selects no complete set; use at least {0.5 / len(candidates):.3g}"
        )
    quotas = [proportion * len(ids) for ids in groups]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(groups)), key=lambda g: counts[g] - quotas[g])
    for g in by_remainder[: total - sum(counts)]:
        counts[g] += 1
    rng = np.random.default_rng([seed, 1])
    chosen = []
    for ids, count in zip(groups, counts):
        chosen += [int(pid) for pid in rng.permutation(ids)[:count]]
    return sorted(chosen)


def injected_subclusters(
    sets: dict[int, list[ase.Atoms]], chosen: Collection[int]
) -> list[ase.Atoms]:
    """The sub-clusters of the chosen parents, by parent id, then order, then
    atom indices.
    """
    return [atoms for pid in sorted(chosen) for atoms in sets[pid]]
