"""Canonical sub-clusters of an N-atom cluster, as integer bitmasks.

A sub-cluster S of a parent cluster with atoms ``0 .. N-1`` is the integer
``sum(1 << i for i in S)``. A :class:`SubsetPlan` lists the sub-clusters that an
expansion needs (every S with ``|S| <= max_order``, plus the empty set at
position 0) and knows how to index them. Like QCManyBody's core, the plan never
runs a calculation: it says what must be computed.

>>> plan = SubsetPlan(3)
>>> plan.masks.tolist()
[0, 1, 2, 3, 4, 5, 6, 7]
>>> plan.orders.tolist()
[0, 1, 1, 2, 1, 2, 2, 3]
>>> atoms_of(6)
[1, 2]
>>> SubsetPlan(4, max_order=2).n_subsets  # empty set + 4 atoms + 6 pairs
11
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
    """Bitmask of a collection of atom indices.

    >>> mask_of([0, 2])
    5
    """
    mask = 0
    for i in atoms:
        mask |= 1 << int(i)
    return mask


def atoms_of(mask: int) -> list[int]:
    """Ascending atom indices of a bitmask (inverse of :func:`mask_of`)."""
    mask = int(mask)
    return [i for i in range(mask.bit_length()) if (mask >> i) & 1]


def _popcount(masks: torch.Tensor, n_atoms: int) -> torch.Tensor:
    bits = torch.arange(n_atoms, dtype=torch.int64, device=masks.device)
    return ((masks.unsqueeze(-1) >> bits) & 1).sum(-1)


class SubsetPlan:
    """The sub-clusters of an ``n_atoms`` cluster up to ``max_order`` atoms.

    :param n_atoms: number of atoms N of the parent cluster.
    :param max_order: largest sub-cluster size k to include (default: N, the
        complete expansion with 2^N entries).
    :param max_atoms: refuse a complete expansion (``max_order >= N``) of a
        cluster with more atoms than this; the 2^N cost explodes.
    :param device: torch device of the index tensors.

    ``masks`` is ascending and starts with the empty set (mask 0). When the plan
    is complete (``max_order == N``) the position of a mask equals its value.
    """

    def __init__(
        self,
        n_atoms: int,
        max_order: int | None = None,
        *,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        device: torch.device | str = "cpu",
    ):
        if n_atoms < 1:
            raise ValueError(f"a cluster needs at least one atom, got n_atoms={n_atoms}")
        if n_atoms > _MAX_BITS:
            raise ValueError(
                f"clusters of more than {_MAX_BITS} atoms cannot be indexed by "
                f"bitmasks (got {n_atoms})"
            )
        max_order = n_atoms if max_order is None else min(int(max_order), n_atoms)
        if max_order < 1:
            raise ValueError(f"max_order must be at least 1, got {max_order}")
        if max_order == n_atoms and n_atoms > max_atoms:
            raise ValueError(
                f"a complete expansion of a {n_atoms}-atom cluster needs 2^{n_atoms} "
                f"sub-clusters (limit: {max_atoms} atoms); set max_order to "
                "truncate the expansion"
            )
        self.n_atoms = n_atoms
        self.max_order = max_order
        self.device = torch.device(device)
        if self.is_complete:
            self.masks = torch.arange(1 << n_atoms, dtype=torch.int64, device=device)
        else:
            masks = [0]
            for m in range(1, max_order + 1):
                masks.extend(mask_of(c) for c in itertools.combinations(range(n_atoms), m))
            self.masks = torch.tensor(sorted(masks), dtype=torch.int64, device=device)
        self.orders = _popcount(self.masks, n_atoms)
        self._partners: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def is_complete(self) -> bool:
        """Whether every subset of the cluster is in the plan."""
        return self.max_order == self.n_atoms

    @property
    def n_subsets(self) -> int:
        """Number of entries, the empty set included."""
        return len(self.masks)

    def count(self, order: int) -> int:
        """Number of sub-clusters with ``order`` atoms, C(N, order)."""
        return math.comb(self.n_atoms, order)

    def index(self, masks: torch.Tensor) -> torch.Tensor:
        """Positions of ``masks`` (which must be in the plan) in ``self.masks``."""
        masks = masks.to(self.device, torch.int64)
        if self.is_complete:
            return masks
        return torch.searchsorted(self.masks, masks)

    def partners(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each atom i: positions of the masks containing i, and of those
        masks without i. Used by the sparse (truncated) Möbius transform.
        """
        if self._partners is None:
            self._partners = []
            for i in range(self.n_atoms):
                with_i = torch.nonzero((self.masks >> i) & 1).flatten()
                without_i = self.index(self.masks[with_i] ^ (1 << i))
                self._partners.append((with_i, without_i))
        return self._partners

    def atom_membership(self) -> torch.Tensor:
        """Boolean ``(n_subsets, n_atoms)`` table: is atom i in sub-cluster S."""
        bits = torch.arange(self.n_atoms, dtype=torch.int64, device=self.device)
        return ((self.masks.unsqueeze(-1) >> bits) & 1).bool()

    def __repr__(self) -> str:
        return (
            f"SubsetPlan(n_atoms={self.n_atoms}, max_order={self.max_order}, "
            f"n_subsets={self.n_subsets})"
        )
