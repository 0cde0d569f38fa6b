"""Distance-screened sub-cluster families inside TorchScript, for the exported
MBE models (``mtt-mbe export --cutoff``).

A sub-cluster S of m bodies is kept when every two of its bodies are within
R_m (for molecules, the distance of their closest atoms), as the pure-python
expansion decides (:func:`metatrain_mbe.expansion.screening.screened_members`).
Cutoffs never grow with the order, so the family is downward closed and
V(S) = Σ_{T⊆S} (-1)^(|S|-|T|) E(T) is exact for every kept S.

The m-body tuples are found by extending each kept (m-1)-body tuple with the
later neighbours of its last body that are within R_m of all of its bodies
(:func:`screened_tuples`), never by listing all C(N, m) and filtering: at a
fixed order and cutoff the number of sub-clusters, and the work, grow
linearly with the number of bodies N. The body distances are one dense
``(N, N)`` matrix (:func:`body_distances`): O(N^2) memory in the number of
bodies, small next to the sub-clusters for the clusters an exported model
expands.

Since V sums telescope, every sum of V(S) over kept sub-clusters is a sum of
E(T) over kept T with integer coefficients: :func:`screened_weights` gives,
for each kept T and order m, (-1)^(m-|T|) times the number of kept S ⊇ T with
|S| = m. Summed over m <= k, these are the coefficients c(T) of the truncated
energy E_k = Σ_{kept |S|<=k} V(S) = Σ_{kept T} c(T) E(T).
"""

import torch

from .batching import subset_members

__all__ = ["body_distances", "screened_tuples", "tuple_members", "screened_weights"]


def body_distances(
    positions: torch.Tensor, body_of_atom: torch.Tensor, n_bodies: int
) -> torch.Tensor:
    """``(n_bodies, n_bodies)`` distances of the bodies: for molecules the
    distance of their closest atoms, for atoms (``body_of_atom = arange(N)``)
    the atom distances. Not differentiated; O(N_atoms^2) memory.

    :param positions: ``(N_atoms, 3)`` positions.
    :param body_of_atom: ``(N_atoms,)`` body of each atom, 0 .. n_bodies - 1.
    """
    coordinates = positions.detach()
    # exact distances (the matrix-product form of cdist loses ~1e-8 Å), so
    # that a pair at the cutoff is kept as the expansion library keeps it
    distances = torch.cdist(coordinates, coordinates, compute_mode="donot_use_mm_for_euclid_dist")
    n_atoms = coordinates.shape[0]
    body = body_of_atom.to(device=coordinates.device, dtype=torch.long)
    if n_bodies == n_atoms and bool(torch.equal(body, torch.arange(n_atoms, device=body.device))):
        return distances
    far = torch.full(
        (n_bodies, n_atoms), float("inf"), dtype=distances.dtype, device=distances.device
    )
    rows = far.scatter_reduce(0, body.reshape(-1, 1).expand(-1, n_atoms), distances, "amin")
    far = torch.full(
        (n_bodies, n_bodies), float("inf"), dtype=distances.dtype, device=distances.device
    )
    return far.scatter_reduce(1, body.reshape(1, -1).expand(n_bodies, -1), rows, "amin")


def screened_tuples(
    distances: torch.Tensor, cutoffs: list[float], max_order: int
) -> list[torch.Tensor]:
    """The kept sub-clusters of orders 1 .. ``max_order``, as ascending body
    tuples.

    :param distances: ``(N, N)`` body distances (:func:`body_distances`).
    :param cutoffs: R_m of order m at index m - 1 (``inf``: order m not
        screened); orders past the end take the last entry.
    :return: per order m = 1 .. (at most) ``max_order``, a ``(C_m, m)`` int64
        tensor of ascending body indices, rows in lexicographic order; the
        list stops before the first order with no kept sub-cluster.
    """
    n_bodies = distances.shape[0]
    device = distances.device
    current = torch.arange(n_bodies, device=device).reshape(-1, 1)
    # the largest distance of two bodies of each kept tuple
    diameter = torch.zeros(n_bodies, dtype=distances.dtype, device=device)
    tuples: list[torch.Tensor] = []
    if n_bodies == 0:
        return tuples
    tuples.append(current)
    for m in range(2, max_order + 1):
        cutoff = float("inf")
        if len(cutoffs) > 0:
            cutoff = cutoffs[min(m, len(cutoffs)) - 1]
        fits = diameter <= cutoff
        base, reach = current[fits], diameter[fits]
        # later neighbours of each body within the cutoff (CSR, ascending)
        near = torch.triu(distances <= cutoff, diagonal=1)
        per_body = near.sum(dim=1)
        first = torch.cumsum(per_body, dim=0) - per_body
        later = torch.nonzero(near)[:, 1]
        last = base[:, -1]
        counts = per_body[last]
        owner = torch.repeat_interleave(torch.arange(base.shape[0], device=device), counts)
        start = torch.cumsum(counts, dim=0) - counts
        rank = torch.arange(owner.shape[0], device=device) - start[owner]
        candidate = later[first[last[owner]] + rank]
        # within the cutoff of every body of the tuple (of the last by construction)
        apart = distances[base[owner], candidate.reshape(-1, 1)].max(dim=1).values
        reach = torch.maximum(reach[owner], apart)
        keep = reach <= cutoff
        if not bool(keep.any()):
            break
        current = torch.cat([base[owner][keep], candidate[keep].reshape(-1, 1)], dim=1)
        diameter = reach[keep]
        tuples.append(current)
    return tuples


def tuple_members(tuples: list[torch.Tensor], n_bodies: int) -> torch.Tensor:
    """``(n_subclusters, n_bodies)`` boolean membership of the ``tuples``
    (:func:`screened_tuples`), order by order, as
    :func:`~metatrain_mbe.compute.batching.subset_members` lists them."""
    rows: list[torch.Tensor] = []
    for combos in tuples:
        member = torch.zeros((combos.shape[0], n_bodies), dtype=torch.bool, device=combos.device)
        rows.append(member.scatter_(1, combos, True))
    return torch.cat(rows)


def _ranks(combos: torch.Tensor, binomials: torch.Tensor) -> torch.Tensor:
    """The rank Σ_j C(b_j, j + 1) of each ascending tuple (a row of
    ``combos``) in the combinatorial number system: one-to-one from the
    t-body tuples onto 0 .. C(N, t) - 1."""
    t = combos.shape[1]
    columns = torch.arange(1, t + 1, device=combos.device).expand_as(combos)
    return binomials[combos, columns].sum(dim=1)


def screened_weights(tuples: list[torch.Tensor], n_bodies: int) -> torch.Tensor:
    """``(n_subclusters, n_orders)`` float64 matrix W with
    Σ_{kept |S|=m} V(S) = Σ_T W[T, m-1] E(T) over the family ``tuples``
    (:func:`screened_tuples`, rows as :func:`tuple_members`): W[T, m-1] is
    (-1)^(m-|T|) times the number of kept S ⊇ T with |S| = m. The truncated
    energy E_k has coefficients ``W[:, :k].sum(1)``.

    Each kept S of m bodies looks up its 2^m - 1 non-empty subsets (all kept:
    the family is downward closed); the cost is Σ_m 2^m C_m.

    :raises ValueError: when a subset of a kept sub-cluster is not kept (a
        family that is not downward closed).
    """
    device = tuples[0].device
    n_orders = len(tuples)
    # C(n, t) for n < N, t <= n_orders: column t is the exclusive cumulative
    # sum of column t - 1 (int64, exact)
    binomials = torch.zeros((n_bodies, n_orders + 1), dtype=torch.int64, device=device)
    binomials[:, 0] = 1
    for t in range(1, n_orders + 1):
        column = binomials[:, t - 1]
        binomials[:, t] = torch.cumsum(column, dim=0) - column
    offsets: list[int] = [0]
    keys: list[torch.Tensor] = []
    positions: list[torch.Tensor] = []
    for combos in tuples:
        offsets.append(offsets[-1] + combos.shape[0])
        ordered = torch.sort(_ranks(combos, binomials))
        keys.append(ordered.values)
        positions.append(ordered.indices)
    counts = torch.zeros((offsets[-1], n_orders), dtype=torch.float64, device=device)
    for m in range(1, n_orders + 1):
        combos = tuples[m - 1]
        patterns = subset_members(m, m, device)
        sizes = patterns.sum(dim=1)
        for t in range(1, m + 1):
            columns = torch.nonzero(patterns[sizes == t])[:, 1].reshape(-1, t)
            subsets = combos[:, columns].reshape(-1, t)
            wanted = _ranks(subsets, binomials)
            found = torch.searchsorted(keys[t - 1], wanted).clamp(max=keys[t - 1].shape[0] - 1)
            if not bool(torch.equal(keys[t - 1][found], wanted)):
                raise ValueError("the screened family is not downward closed")
            rows = positions[t - 1][found] + offsets[t - 1]
            counts[:, m - 1].index_add_(
                0, rows, torch.ones(rows.shape[0], dtype=counts.dtype, device=device)
            )
    orders = torch.cat(
        [torch.full((c.shape[0],), c.shape[1], dtype=torch.long, device=device) for c in tuples]
    )
    parity = (
        torch.arange(1, n_orders + 1, device=device).reshape(1, -1) - orders.reshape(-1, 1)
    ) % 2
    return counts * (1.0 - 2.0 * parity.to(counts.dtype))
