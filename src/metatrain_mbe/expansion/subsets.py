"""The sub-clusters of an expansion: a downward-closed family of body sets.

A body is an atom, or a fragment (a molecule) when the parent declares them. A
sub-cluster S of a parent with bodies ``0 .. N-1`` is its ascending body
indices. A :class:`SubsetPlan` lists the sub-clusters an expansion needs: every
S of at most ``max_order`` bodies, optionally screened by distance
(:class:`~.screening.Cutoffs`), always with every subset of a kept S (so that
V(S) is exact for each). Like QCManyBody's core, the plan never runs a
calculation: it says what must be computed, indexes it, and knows which atoms
each sub-cluster holds.

Positions: the empty set first, then the sub-clusters order by order, each
order in lexicographic order of its body tuples. Gradients use a sparse layout
of *atom rows*: one row per (sub-cluster, atom of it), sub-clusters in plan
order and atoms ascending within each.

>>> plan = SubsetPlan(3)
>>> [plan.bodies(k) for k in range(plan.n_subsets)]
[[], [0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]
>>> plan.orders.tolist()
[0, 1, 1, 1, 2, 2, 2, 3]
>>> plan.index(torch.tensor([[0, 2], [1, 2]])).tolist()
[5, 6]
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

from .screening import Cutoffs, screened_members, subset_keys

__all__ = ["SubsetPlan", "DEFAULT_MAX_ATOMS", "MAX_SUBCLUSTERS"]

#: Largest cluster expanded completely unless the caller raises the limit: a
#: complete expansion has 2^N sub-clusters (about 10^6 for N = 20).
DEFAULT_MAX_ATOMS = 20

#: Most sub-clusters one plan holds (2^20): each is at least one evaluation.
MAX_SUBCLUSTERS = 2**DEFAULT_MAX_ATOMS


class SubsetPlan:
    """A downward-closed family of sub-clusters of a cluster of ``n_bodies``.

    :param n_bodies: number of bodies N of the parent cluster.
    :param max_order: largest sub-cluster size k, in bodies (default: N, the
        complete expansion).
    :param cutoffs: distance screening per order (default: none, every
        sub-cluster of at most k bodies).
    :param pairs: ``(P, 2)`` body pairs with their ``distances`` (Å), at least
        those within ``cutoffs.largest``; needed only with cutoffs.
    :param fragments: the body of each atom, numbered 0 .. N-1 (default: one
        body per atom).
    :param max_atoms: refuse a complete expansion of more bodies than this.
    :param max_subclusters: refuse a family of more sub-clusters than this.
    :param device: torch device of the index tensors.
    :raises ValueError: for a refused plan, naming ``--max-order`` and
        ``--cutoff``.

    Cost: enumeration and indexing grow as the number of kept sub-clusters
    (linear in N at fixed order and cutoff, C(N, k) without cutoff).
    """

    def __init__(
        self,
        n_bodies: int,
        max_order: int | None = None,
        *,
        cutoffs: Cutoffs | None = None,
        pairs: torch.Tensor | None = None,
        distances: torch.Tensor | None = None,
        fragments: torch.Tensor | None = None,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        max_subclusters: int = MAX_SUBCLUSTERS,
        device: torch.device | str = "cpu",
    ):
        if n_bodies < 1:
            raise ValueError(f"a cluster needs at least one body, got {n_bodies}")
        cutoffs = cutoffs or Cutoffs({})
        max_order = n_bodies if max_order is None else min(int(max_order), n_bodies)
        if max_order < 1:
            raise ValueError(f"max_order must be at least 1, got {max_order}")
        if max_order == n_bodies and n_bodies > max_atoms:
            raise ValueError(
                f"a complete expansion of a {n_bodies}-body cluster needs 2^{n_bodies} "
                f"sub-clusters (limit: {max_atoms} bodies); truncate it with --max-order "
                "and screen it with --cutoff"
            )
        unscreened = [m for m in range(1, max_order + 1) if math.isinf(cutoffs.at(m))]
        upfront = sum(math.comb(n_bodies, m) for m in unscreened)
        if upfront > max_subclusters:
            raise ValueError(
                f"{n_bodies} bodies up to order {max_order} give {upfront} sub-clusters "
                f"without screening (limit {max_subclusters}); lower the largest order "
                "(--max-order, --orders) or screen with --cutoff"
            )
        self.device = torch.device(device)
        self.n_bodies = n_bodies
        self.cutoffs = cutoffs
        if fragments is None:
            fragments = torch.arange(n_bodies, dtype=torch.int64)
        #: ``(n_atoms,)`` int64: the body of each atom
        self.fragments = torch.as_tensor(fragments, dtype=torch.int64).to(self.device)
        #: number of atoms of the parent (``n_bodies`` unless bodies are fragments)
        self.n_atoms = len(self.fragments)
        self._atomic = self.n_atoms == n_bodies and bool(
            (self.fragments == torch.arange(n_bodies, device=self.device)).all()
        )
        members = screened_members(
            n_bodies, max_order, cutoffs, pairs, distances, device=self.device
        )
        while len(members) > 2 and len(members[-1]) == 0:
            members.pop()
        #: per order m = 0 .. max_order, ``(C_m, m)`` ascending body indices
        self.members = members
        #: largest order with a kept sub-cluster
        self.max_order = len(members) - 1
        counts = [len(t) for t in members]
        if sum(counts) - 1 > max_subclusters:
            raise ValueError(
                f"{n_bodies} bodies up to order {max_order} with cutoffs "
                f"{cutoffs.by_order} keep {sum(counts) - 1} sub-clusters (limit "
                f"{max_subclusters}); lower the largest order (--max-order, --orders) or --cutoff"
            )
        #: start position of each order (and the total, at the end)
        self.offsets = [0, *itertools.accumulate(counts)]
        #: ``(n_subsets,)`` int64: the number of bodies of each sub-cluster
        self.orders = torch.repeat_interleave(
            torch.arange(len(counts), device=self.device), torch.tensor(counts, device=self.device)
        )
        # per order: the keys of its sub-clusters, sorted, and their positions
        self._keys = [torch.sort(subset_keys(t, n_bodies)) for t in members]
        self._rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._passes: list[tuple[torch.Tensor, ...]] | None = None

    @classmethod
    def of_fragments(cls, fragments, max_order: int | None = None, **options) -> SubsetPlan:
        """The plan of a cluster whose bodies are fragments (molecules).

        :param fragments: the fragment of each atom, numbered 0 .. K-1 (every
            number used); orders then count fragments.
        :param options: as for :class:`SubsetPlan` (``cutoffs``, ``pairs``, ...).
        """
        ids = torch.as_tensor(list(fragments), dtype=torch.int64)
        if ids.dim() != 1 or len(ids) == 0 or int(ids.min()) < 0:
            raise ValueError("fragments must give a fragment id >= 0 for each atom")
        n_bodies = int(ids.max()) + 1
        if len(torch.unique(ids)) != n_bodies:
            raise ValueError(f"fragments must number every fragment 0 .. {n_bodies - 1}")
        return cls(n_bodies, max_order, fragments=ids, **options)

    @property
    def n_subsets(self) -> int:
        """Number of entries, the empty set included."""
        return self.offsets[-1]

    @property
    def is_atomic(self) -> bool:
        """Whether every atom is a body of its own (body i is atom i)."""
        return self._atomic

    @property
    def is_complete(self) -> bool:
        """Whether every subset of the cluster is in the plan (2^N entries)."""
        return self.n_subsets == 1 << self.n_bodies if self.n_bodies < 63 else False

    def is_full(self, order: int) -> bool:
        """Whether the plan keeps all C(N, m) sub-clusters of ``order``."""
        return 0 <= order <= self.max_order and self.kept(order) == self.count(order)

    def count(self, order: int) -> int:
        """Number of sub-clusters of the cluster with ``order`` bodies, C(N, m)."""
        return math.comb(self.n_bodies, order)

    def kept(self, order: int) -> int:
        """Number of sub-clusters of ``order`` in the plan."""
        return len(self.members[order]) if order <= self.max_order else 0

    def positions(self, order: int) -> torch.Tensor:
        """Plan positions of the sub-clusters of ``order``."""
        return torch.arange(self.offsets[order], self.offsets[order + 1], device=self.device)

    def bodies(self, position: int) -> list[int]:
        """Ascending body indices of the sub-cluster at ``position``."""
        m = int(self.orders[position])
        return self.members[m][position - self.offsets[m]].tolist()

    def index(self, members: torch.Tensor) -> torch.Tensor:
        """Positions of sub-clusters given as ``(n, m)`` ascending body indices
        (all of one order m, all in the plan)."""
        members = members.to(self.device, torch.int64)
        m = members.shape[1]
        if m > self.max_order:
            raise KeyError(f"the plan stops at order {self.max_order}")
        keys, order = self._keys[m]
        at = torch.searchsorted(keys, subset_keys(members, self.n_bodies))
        at = order[at.clamp(max=max(len(keys) - 1, 0))]
        if len(members) and not bool((self.members[m][at] == members).all()):
            raise KeyError("sub-clusters not in the plan")
        return at + self.offsets[m]

    def find(self, bodies: list[int]) -> int | None:
        """Position of the sub-cluster with these bodies, None when not kept."""
        if not bodies:
            return 0
        try:
            return int(self.index(torch.tensor([sorted(bodies)]))[0])
        except KeyError:
            return None

    def masks(self) -> torch.Tensor:
        """``(n_subsets,)`` int64 bitmask of each sub-cluster (bit i: body i),
        for plans of at most 62 bodies (the fast subset transform)."""
        if self.n_bodies > 62:
            raise ValueError(f"{self.n_bodies} bodies do not fit in a 64-bit mask")
        return torch.cat(
            [torch.bitwise_left_shift(torch.ones_like(t), t).sum(1) for t in self.members]
        )

    # --- atoms ------------------------------------------------------------

    def atom_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The sparse gradient layout: ``(subset, atom, start)``.

        ``subset`` and ``atom`` (``(n_rows,)`` int64) name each row: a
        sub-cluster position and one of its atoms (parent indexing), grouped
        by sub-cluster, atoms ascending. ``start`` (``(n_subsets + 1,)``) is
        the first row of each sub-cluster.
        """
        if self._rows is None:
            atoms = [self._atoms_of_order(m) for m in range(self.max_order + 1)]
            counts = torch.cat([valid.sum(1) for _, valid in atoms])
            start = torch.zeros(self.n_subsets + 1, dtype=torch.int64, device=self.device)
            start[1:] = torch.cumsum(counts, 0)
            atom = torch.cat([table[valid] for table, valid in atoms])
            subset = torch.repeat_interleave(
                torch.arange(self.n_subsets, device=self.device), counts
            )
            self._rows = (subset, atom, start)
        return self._rows

    def atom_counts(self) -> torch.Tensor:
        """``(n_subsets,)`` int64: the number of atoms of each sub-cluster."""
        start = self.atom_rows()[2]
        return start[1:] - start[:-1]

    def atoms_in(self, position: int) -> list[int]:
        """Ascending atom indices of the sub-cluster at ``position``."""
        _, atom, start = self.atom_rows()
        return atom[start[position] : start[position + 1]].tolist()

    def rows_of(self, positions: torch.Tensor) -> torch.Tensor:
        """The atom rows of the sub-clusters at ``positions``, in that order
        (for each, its atoms ascending)."""
        _, _, start = self.atom_rows()
        positions = positions.to(self.device)
        counts = start[positions + 1] - start[positions]
        first = torch.repeat_interleave(
            start[positions] - (torch.cumsum(counts, 0) - counts), counts
        )
        return first + torch.arange(int(counts.sum()), device=self.device)

    def atom_membership(self, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Boolean ``(n, n_atoms)`` table: is atom i in the sub-cluster, for
        the given ``positions`` (default: all; mind the size for large plans)."""
        subset, atom, _ = self.atom_rows()
        if positions is None:
            positions = torch.arange(self.n_subsets, device=self.device)
        positions = positions.to(self.device)
        rows = self.rows_of(positions)
        local = torch.repeat_interleave(
            torch.arange(len(positions), device=self.device), self.atom_counts()[positions]
        )
        table = torch.zeros((len(positions), self.n_atoms), dtype=torch.bool, device=self.device)
        table[local, atom[rows]] = True
        return table

    def _body_atoms(self) -> torch.Tensor:
        """``(N, B)`` atoms of each body, ascending, padded with ``n_atoms``."""
        counts = torch.bincount(self.fragments, minlength=self.n_bodies)
        order = torch.argsort(self.fragments * self.n_atoms + torch.arange(self.n_atoms))
        table = torch.full(
            (self.n_bodies, int(counts.max())), self.n_atoms, dtype=torch.int64, device=self.device
        )
        start = torch.cumsum(counts, 0) - counts
        rank = torch.arange(self.n_atoms, device=self.device) - start[self.fragments[order]]
        table[self.fragments[order], rank] = order
        return table

    def _atoms_of_order(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(C_m, m·B)`` ascending atoms of each m-body sub-cluster (padded
        with ``n_atoms``) and which entries are atoms."""
        body_atoms = self._body_atoms()
        table = body_atoms[self.members[m]].reshape(len(self.members[m]), -1)
        table = torch.sort(table, dim=1).values
        return table, table < self.n_atoms

    # --- the passes of the Möbius transform ---------------------------------

    def passes(self) -> list[tuple[torch.Tensor, ...]]:
        r"""For each body i with sub-clusters: ``(with_i, without_i, row_with,
        row_without)``, the positions of the sub-clusters S that hold i and of
        S \ {i}, and the atom rows (S, a) with a outside body i and the rows
        (S \ {i}, a). One pass ``x[with_i] -= x[without_i]`` per body is the
        Möbius inversion over a downward-closed family (cost: the sum of |S|).
        """
        if self._passes is not None:
            return self._passes
        _, _, start = self.atom_rows()
        body_atoms = self._body_atoms()
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("b", "s", "t", "rb", "rs", "rt")}
        for m in range(1, self.max_order + 1):
            members = self.members[m]
            positions = self.positions(m)
            atoms, valid = self._atoms_of_order(m)
            local = torch.arange(atoms.shape[1], device=self.device)
            for j in range(m):
                body = members[:, j]
                rest = torch.cat([members[:, :j], members[:, j + 1 :]], 1)
                smaller = self.index(rest) if m > 1 else torch.zeros_like(body)
                parts["b"].append(body)
                parts["s"].append(positions)
                parts["t"].append(smaller)
                # atom rows of S outside body j, and their rank in S \ {body}
                mine = body_atoms[body]  # (C, B)
                outside = valid & (
                    self.fragments[atoms.clamp(max=self.n_atoms - 1)] != body[:, None]
                )
                below = (mine[:, None, :] < atoms[:, :, None]).sum(-1)
                s_row = start[positions][:, None] + local
                t_row = start[smaller][:, None] + local - below
                owner = torch.nonzero(outside, as_tuple=True)[0]
                parts["rb"].append(body[owner])
                parts["rs"].append(s_row[outside])
                parts["rt"].append(t_row[outside])
        self._passes = []
        if not parts["b"]:
            return self._passes
        b, s, t = (torch.cat(parts[k]) for k in ("b", "s", "t"))
        rb, rs, rt = (torch.cat(parts[k]) for k in ("rb", "rs", "rt"))
        by_body, by_row_body = torch.argsort(b, stable=True), torch.argsort(rb, stable=True)
        sizes = torch.bincount(b, minlength=self.n_bodies).tolist()
        row_sizes = torch.bincount(rb, minlength=self.n_bodies).tolist()
        for pieces in zip(
            s[by_body].split(sizes),
            t[by_body].split(sizes),
            rs[by_row_body].split(row_sizes),
            rt[by_row_body].split(row_sizes),
        ):
            if len(pieces[0]):
                self._passes.append(pieces)
        return self._passes

    def __repr__(self) -> str:
        atoms = "" if self.is_atomic else f", n_atoms={self.n_atoms}"
        screened = f", cutoffs={self.cutoffs.by_order}" if self.cutoffs else ""
        return (
            f"SubsetPlan(n_bodies={self.n_bodies}{atoms}, max_order={self.max_order}"
            f"{screened}, n_subsets={self.n_subsets})"
        )
