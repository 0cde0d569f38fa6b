"""Canonical sub-clusters of a cluster of N bodies, as integer bitmasks.

A body is an atom, or a fragment (a molecule) when the parent declares them. A
sub-cluster S of a parent with bodies ``0 .. N-1`` is the integer
``sum(1 << i for i in S)``. A :class:`SubsetPlan` lists the sub-clusters that an
expansion needs (every S with ``|S| <= max_order`` bodies, plus the empty set
at position 0), knows how to index them and which atoms each one holds. Like
QCManyBody's core, the plan never runs a calculation: it says what must be
computed.

>>> plan = SubsetPlan(3)
>>> plan.masks.tolist()
[0, 1, 2, 3, 4, 5, 6, 7]
>>> plan.orders.tolist()
[0, 1, 1, 2, 1, 2, 2, 3]
>>> atoms_of(6)
[1, 2]
>>> SubsetPlan(4, max_order=2).n_subsets  # empty set + 4 atoms + 6 pairs
11
>>> water_dimer = SubsetPlan.of_fragments([0, 0, 0, 1, 1, 1])  # two molecules
>>> water_dimer.n_bodies, water_dimer.n_atoms, water_dimer.atoms_in(2)
(2, 6, [3, 4, 5])
"""

from __future__ import annotations

import itertools
import math

import torch

__all__ = ["SubsetPlan", "atoms_of", "mask_of", "DEFAULT_MAX_ATOMS"]

#: Largest cluster expanded completely unless the caller raises the limit: a
#: complete expansion has 2^N sub-clusters (about 10^6 for N = 20).
DEFAULT_MAX_ATOMS = 20

#: Bitmasks are stored as int64 (and as int32 in metatensor Labels).
_MAX_BITS = 62


def mask_of(atoms) -> int:
    """Bitmask of a collection of body (atom) indices.

    >>> mask_of([0, 2])
    5
    """
    mask = 0
    for i in atoms:
        mask |= 1 << int(i)
    return mask


def atoms_of(mask: int) -> list[int]:
    """Ascending body (atom) indices of a bitmask (inverse of :func:`mask_of`);
    :meth:`SubsetPlan.atoms_in` gives the atoms of a mask over fragments."""
    mask = int(mask)
    return [i for i in range(mask.bit_length()) if (mask >> i) & 1]


def _popcount(masks: torch.Tensor, n_bits: int) -> torch.Tensor:
    bits = torch.arange(n_bits, dtype=torch.int64, device=masks.device)
    return ((masks.unsqueeze(-1) >> bits) & 1).sum(-1)


class SubsetPlan:
    """The sub-clusters of a cluster of ``n_bodies`` bodies up to ``max_order``.

    :param n_bodies: number of bodies N of the parent cluster (its atoms, unless
        built with :meth:`of_fragments`).
    :param max_order: largest sub-cluster size k, in bodies (default: N, the
        complete expansion with 2^N entries).
    :param max_atoms: refuse a complete expansion (``max_order >= N``) of a
        cluster with more bodies than this; the 2^N cost explodes.
    :param device: torch device of the index tensors.

    ``masks`` is ascending and starts with the empty set (mask 0). When the plan
    is complete (``max_order == N``) the position of a mask equals its value.
    ``orders`` counts the bodies of each sub-cluster; ``fragments`` is the body
    of each atom (``arange(N)`` when atoms are the bodies).
    """

    def __init__(
        self,
        n_bodies: int,
        max_order: int | None = None,
        *,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        device: torch.device | str = "cpu",
    ):
        if n_bodies < 1:
            raise ValueError(f"a cluster needs at least one body, got {n_bodies}")
        if n_bodies > _MAX_BITS:
            raise ValueError(
                f"clusters of more than {_MAX_BITS} bodies cannot be indexed by "
                f"bitmasks (got {n_bodies})"
            )
        max_order = n_bodies if max_order is None else min(int(max_order), n_bodies)
        if max_order < 1:
            raise ValueError(f"max_order must be at least 1, got {max_order}")
        if max_order == n_bodies and n_bodies > max_atoms:
            raise ValueError(
                f"a complete expansion of a {n_bodies}-body cluster needs 2^{n_bodies} "
                f"sub-clusters (limit: {max_atoms} bodies); set max_order to "
                "truncate the expansion"
            )
        self.n_bodies = n_bodies
        #: number of atoms of the parent (``n_bodies`` unless built over fragments)
        self.n_atoms = n_bodies
        self.max_order = max_order
        self.device = torch.device(device)
        #: ``(n_atoms,)`` int64: the body of each atom
        self.fragments = torch.arange(n_bodies, dtype=torch.int64, device=self.device)
        if self.is_complete:
            self.masks = torch.arange(1 << n_bodies, dtype=torch.int64, device=device)
        else:
            masks = [0]
            for m in range(1, max_order + 1):
                masks.extend(mask_of(c) for c in itertools.combinations(range(n_bodies), m))
            self.masks = torch.tensor(sorted(masks), dtype=torch.int64, device=device)
        self.orders = _popcount(self.masks, n_bodies)
        self._partners: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._atomic = True  # set once by of_fragments: atoms_in reads it per mask

    @classmethod
    def of_fragments(
        cls,
        fragments,
        max_order: int | None = None,
        *,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        device: torch.device | str = "cpu",
    ) -> SubsetPlan:
        """The plan of a cluster whose bodies are fragments (molecules).

        :param fragments: the fragment of each atom, numbered 0 .. K-1 (every
            number used); bitmasks and orders then count fragments.
        :param max_order: largest sub-cluster size, in fragments.
        """
        ids = torch.as_tensor(list(fragments), dtype=torch.int64)
        if ids.dim() != 1 or len(ids) == 0 or int(ids.min()) < 0:
            raise ValueError("fragments must give a fragment id >= 0 for each atom")
        n_bodies = int(ids.max()) + 1
        if len(torch.unique(ids)) != n_bodies:
            raise ValueError(f"fragments must number every fragment 0 .. {n_bodies - 1}")
        plan = cls(n_bodies, max_order, max_atoms=max_atoms, device=device)
        plan.n_atoms = len(ids)
        plan.fragments = ids.to(plan.device)
        plan._atomic = len(ids) == n_bodies and bool((ids == torch.arange(n_bodies)).all())
        return plan

    @property
    def is_complete(self) -> bool:
        """Whether every subset of the cluster is in the plan."""
        return self.max_order == self.n_bodies

    @property
    def n_subsets(self) -> int:
        """Number of entries, the empty set included."""
        return len(self.masks)

    @property
    def is_atomic(self) -> bool:
        """Whether every atom is a body of its own (body i is atom i)."""
        return self._atomic

    def count(self, order: int) -> int:
        """Number of sub-clusters with ``order`` bodies, C(N, order)."""
        return math.comb(self.n_bodies, order)

    def index(self, masks: torch.Tensor) -> torch.Tensor:
        """Positions of ``masks`` (which must be in the plan) in ``self.masks``."""
        masks = masks.to(self.device, torch.int64)
        if self.is_complete:
            return masks
        return torch.searchsorted(self.masks, masks)

    def partners(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each body i: positions of the masks containing i, and of those
        masks without i. Used by the sparse (truncated) Möbius transform.
        """
        if self._partners is None:
            self._partners = []
            for i in range(self.n_bodies):
                with_i = torch.nonzero((self.masks >> i) & 1).flatten()
                without_i = self.index(self.masks[with_i] ^ (1 << i))
                self._partners.append((with_i, without_i))
        return self._partners

    def body_membership(self) -> torch.Tensor:
        """Boolean ``(n_subsets, n_bodies)`` table: is body i in sub-cluster S."""
        bits = torch.arange(self.n_bodies, dtype=torch.int64, device=self.device)
        return ((self.masks.unsqueeze(-1) >> bits) & 1).bool()

    def atom_membership(self) -> torch.Tensor:
        """Boolean ``(n_subsets, n_atoms)`` table: is atom i in sub-cluster S."""
        return self.body_membership()[:, self.fragments]

    def atom_counts(self) -> torch.Tensor:
        """``(n_subsets,)`` int64: the number of atoms of each sub-cluster."""
        return self.atom_membership().sum(-1)

    def atoms_in(self, mask: int) -> list[int]:
        """Ascending atom indices of the sub-cluster ``mask``."""
        if self.is_atomic:
            return atoms_of(mask)
        bodies = torch.tensor(atoms_of(mask), dtype=torch.int64, device=self.device)
        return torch.nonzero(torch.isin(self.fragments, bodies)).flatten().tolist()

    def __repr__(self) -> str:
        atoms = "" if self.is_atomic else f", n_atoms={self.n_atoms}"
        return (
            f"SubsetPlan(n_bodies={self.n_bodies}{atoms}, max_order={self.max_order}, "
            f"n_subsets={self.n_subsets})"
        )
