"""Distance screening: which sub-clusters a truncated, screened family keeps.

A sub-cluster S of m bodies is kept when every two of its bodies are within
the cutoff R_m of order m (Å; for molecules, the distance of their closest
atoms). Cutoffs never grow with the order, so every subset of a kept S is kept
too: the family is downward closed and V(S) stays exact for each kept S.

The m-body sets are enumerated by extending each kept (m-1)-body set with the
neighbours of its last body, never by listing all C(N, m) and filtering: at
fixed order and cutoff the cost grows linearly with the number of bodies.

>>> pairs = torch.tensor([[0, 1], [1, 2], [0, 2], [2, 3]])
>>> distances = torch.tensor([1.0, 1.0, 1.5, 1.0], dtype=torch.float64)
>>> [t.tolist() for t in screened_members(4, 3, Cutoffs({2: 1.2}), pairs, distances)]
[[[]], [[0], [1], [2], [3]], [[0, 1], [1, 2], [2, 3]], []]
"""

from __future__ import annotations

import math

import torch

from ..cutoffs import Cutoffs

__all__ = ["Cutoffs", "screened_members", "subset_keys"]


def subset_keys(members: torch.Tensor, n_bodies: int) -> torch.Tensor:
    """One int64 key per sorted body tuple (a row of ``members``): its rank
    sum_j C(b_j, j + 1) in the combinatorial number system, a one-to-one map
    of the m-body tuples of N bodies onto 0 .. C(N, m) - 1.
    """
    m = members.shape[1]
    if math.comb(n_bodies, m) >= 2**63:
        raise ValueError(f"sub-clusters of {m} bodies of a {n_bodies}-body cluster cannot be keyed")
    table = torch.tensor(
        [[math.comb(n, j + 1) for j in range(m)] for n in range(n_bodies)],
        dtype=torch.int64,
        device=members.device,
    ).reshape(n_bodies, m)
    columns = torch.arange(m, device=members.device).expand_as(members)
    return table[members, columns].sum(-1)


def screened_members(
    n_bodies: int,
    max_order: int,
    cutoffs: Cutoffs,
    pairs: torch.Tensor | None = None,
    distances: torch.Tensor | None = None,
    *,
    device: torch.device | str = "cpu",
) -> list[torch.Tensor]:
    """The kept sub-clusters of each order 0 .. ``max_order``.

    :param pairs: ``(P, 2)`` body pairs ``i < j`` with their ``distances``
        (Å): at least every pair within ``cutoffs.largest`` (pairs not given
        count as farther than every cutoff). Not needed without screening.
    :return: per order m, a ``(C_m, m)`` int64 tensor of ascending body
        indices, the rows in lexicographic order (order 0: the empty set).
        Orders past the last non-empty one are empty.
    """
    device = torch.device(device)
    if cutoffs and (pairs is None or distances is None):
        raise ValueError("a screened family needs the pairs of bodies and their distances")
    lookup = _PairLookup(n_bodies, pairs, distances, device)
    members = [torch.zeros((1, 0), dtype=torch.int64, device=device)]
    current = torch.arange(n_bodies, dtype=torch.int64, device=device).reshape(-1, 1)
    # the largest pair distance within each kept set
    diameter = torch.zeros(n_bodies, dtype=torch.float64, device=device)
    for m in range(1, max_order + 1):
        if m > 1:
            current, diameter = _extend(current, diameter, cutoffs.at(m), lookup)
        members.append(current)
    return members


class _PairLookup:
    """Distances of body pairs by key ``i * N + j`` (``i < j``), and the
    forward neighbours of each body within a cutoff (CSR)."""

    def __init__(self, n_bodies, pairs, distances, device):
        self.n_bodies = n_bodies
        if pairs is None:
            pairs = torch.zeros((0, 2), dtype=torch.int64)
            distances = torch.zeros(0, dtype=torch.float64)
        pairs = pairs.to(device, torch.int64)
        low, high = pairs.min(1).values, pairs.max(1).values
        keys = low * n_bodies + high
        order = torch.argsort(keys)
        self.keys = keys[order]
        self.low, self.high = low[order], high[order]
        self.distances = distances.to(device, torch.float64)[order]

    def distance(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Distances of the pairs ``(i, j)`` (inf for pairs not listed)."""
        keys = torch.minimum(i, j) * self.n_bodies + torch.maximum(i, j)
        if len(self.keys) == 0:
            return torch.full(keys.shape, math.inf, dtype=torch.float64, device=keys.device)
        at = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        found = self.keys[at] == keys
        return torch.where(found, self.distances[at], torch.full_like(self.distances[at], math.inf))

    def forward(self, bodies: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
        """For each of ``bodies``: its neighbours j > body within ``cutoff``.

        :return: the position in ``bodies`` of each candidate, and the candidate.
        """
        n = self.n_bodies
        if math.isinf(cutoff):  # every later body
            counts = n - 1 - bodies
            owner = torch.repeat_interleave(torch.arange(len(bodies), device=bodies.device), counts)
            start = torch.cumsum(counts, 0) - counts
            rank = torch.arange(len(owner), device=bodies.device) - start[owner]
            return owner, bodies[owner] + 1 + rank
        near = self.distances <= cutoff
        low, high = self.low[near], self.high[near]  # sorted by low, then high
        counts_per_body = torch.bincount(low, minlength=n)
        body_start = torch.cumsum(counts_per_body, 0) - counts_per_body
        counts = counts_per_body[bodies]
        owner = torch.repeat_interleave(torch.arange(len(bodies), device=bodies.device), counts)
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(owner), device=bodies.device) - start[owner]
        return owner, high[body_start[bodies[owner]] + rank]


def _extend(current, diameter, cutoff, lookup):
    """The (m+1)-body sets within ``cutoff``: each kept m-body set whose
    diameter is within the cutoff, plus a later neighbour of its last body
    that is within the cutoff of all of its bodies."""
    fits = diameter <= cutoff
    current, diameter = current[fits], diameter[fits]
    owner, candidate = lookup.forward(current[:, -1], cutoff)
    base = current[owner]
    reach = diameter[owner]
    if base.shape[1] > 1:
        far = lookup.distance(base[:, :-1], candidate.unsqueeze(1).expand(-1, base.shape[1] - 1))
        reach = torch.maximum(reach, far.max(1).values)
    reach = torch.maximum(reach, lookup.distance(base[:, -1], candidate))
    keep = reach <= cutoff
    # rows come out grouped by base set (lexicographic) and ascending candidate
    return torch.cat([base[keep], candidate[keep].unsqueeze(1)], 1), reach[keep]
