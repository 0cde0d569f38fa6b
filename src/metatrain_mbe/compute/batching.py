"""Sub-clusters of a finite parent as metatomic Systems, with their neighbour
lists derived from the parent's (torch ops only, TorchScript-compatible).

A batch is described by ``members``, a ``(F, N)`` boolean table (sub-cluster f
holds parent atom i) and ``positions``, a ``(n_batch_atoms, 3)`` tensor holding
for every ``(f, i)`` with ``members[f, i]`` (in ``torch.nonzero`` order:
sub-cluster by sub-cluster, atoms ascending) a copy of parent atom i. Making
``positions`` a leaf that requires gradients gives, after one backward pass of
the summed energies, dE(S_f)/dr_i for every sub-cluster at once: each batch
atom belongs to exactly one sub-cluster.

The neighbour pairs of the parent are found once by brute force (clusters are
small); each sub-cluster keeps the pairs whose two atoms it holds. A parent in
a periodic cell (how MD engines pass clusters: LAMMPS ``p p p``, i-PI) is
accepted when no atom is within the interaction range of a periodic image
(:func:`.isolation.check_isolated`), and is then the isolated cluster. Distance vectors
are recomputed from ``positions``, so the autograd graph runs to the
sub-cluster's own copy of the atoms. Two layouts:

- :func:`fragment_system`: every sub-cluster of the batch as a disconnected
  piece of one System, pieces shifted ``separation`` Å apart along x (per-atom
  energies are then summed per piece);
- :func:`subcluster_systems`: one System per sub-cluster.

A sub-cluster is a set of bodies: atoms, or molecules (fragments of the
parent). :func:`subset_members` lists subsets of bodies; indexing its table
with the body of each atom (``members[:, body_of_atom]``) gives the atom
membership the functions here take, so molecules need nothing else.
"""

import torch
from metatensor.torch import Labels, TensorBlock
from metatomic.torch import NeighborListOptions, System

__all__ = [
    "subset_members",
    "batch_atoms",
    "fragment_separation",
    "fragment_system",
    "neighbor_block",
    "parent_pairs",
    "subcluster_pairs",
    "subcluster_systems",
]


def subset_members(n_bodies: int, max_order: int, device: torch.device) -> torch.Tensor:
    """``(n_subclusters, n_bodies)`` membership of every subset with
    1..max_order bodies, by order then lexicographically (each order extends the
    previous one's index tuples by a larger body index; ``torch.combinations``
    would build n^r candidates)."""
    bodies = torch.arange(n_bodies, device=device)
    combos = bodies.reshape(-1, 1)
    rows: list[torch.Tensor] = []
    for order in range(1, min(max_order, n_bodies) + 1):
        if order > 1:
            larger = torch.nonzero(bodies.reshape(1, -1) > combos[:, -1:])
            combos = torch.cat([combos[larger[:, 0]], larger[:, 1:]], dim=1)
        member = torch.zeros((combos.shape[0], n_bodies), dtype=torch.bool, device=device)
        rows.append(member.scatter_(1, combos, True))
    return torch.cat(rows)


def parent_pairs(positions: torch.Tensor, cutoff: float, full_list: bool) -> torch.Tensor:
    """``(n_pairs, 2)`` atom pairs (i, j) of a finite cluster closer than ``cutoff``.

    :param positions: ``(N, 3)`` positions (length unit of ``cutoff``).
    :param full_list: both (i, j) and (j, i) when true, else only i < j.
    """
    distances = torch.cdist(positions.detach(), positions.detach())
    close = distances < cutoff
    close.fill_diagonal_(False)
    if not full_list:
        close = torch.triu(close, diagonal=1)
    return torch.nonzero(close)


def batch_atoms(members: torch.Tensor) -> list[torch.Tensor]:
    """Sub-cluster and parent atom of every batch atom, and batch index of each
    ``(f, i)`` pair (-1 where atom i is not in sub-cluster f).

    :param members: ``(F, N)`` boolean membership table.
    :return: ``[subcluster, parent_atom, position_in_batch]``.
    """
    found = torch.nonzero(members)
    subcluster, parent_atom = found[:, 0], found[:, 1]
    position_in_batch = torch.full(members.shape, -1, dtype=torch.long, device=members.device)
    position_in_batch[subcluster, parent_atom] = torch.arange(
        subcluster.shape[0], device=members.device
    )
    return [subcluster, parent_atom, position_in_batch]


def subcluster_pairs(
    pairs: torch.Tensor, members: torch.Tensor, position_in_batch: torch.Tensor
) -> list[torch.Tensor]:
    """The parent's ``pairs`` repeated for every sub-cluster holding both atoms.

    :return: ``[subcluster, batch_pairs]``: the sub-cluster of each kept pair
        and the ``(n, 2)`` batch indices of its two atoms.
    """
    first, second = pairs[:, 0], pairs[:, 1]
    found = torch.nonzero(members[:, first] & members[:, second])
    subcluster, pair = found[:, 0], found[:, 1]
    batch_pairs = torch.stack(
        [position_in_batch[subcluster, first[pair]], position_in_batch[subcluster, second[pair]]],
        dim=1,
    )
    return [subcluster, batch_pairs]


def neighbor_block(positions: torch.Tensor, pairs: torch.Tensor) -> TensorBlock:
    """A metatomic neighbour list of a non-periodic system from its ``pairs``,
    with distance vectors ``positions[j] - positions[i]`` (gradients flow)."""
    vectors = positions[pairs[:, 1]] - positions[pairs[:, 0]]
    samples = torch.cat(
        [pairs, torch.zeros((pairs.shape[0], 3), dtype=pairs.dtype, device=pairs.device)], dim=1
    ).to(torch.int32)
    device = positions.device
    return TensorBlock(
        values=vectors.reshape(-1, 3, 1),
        samples=Labels(
            ["first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"],
            samples,
        ),
        components=[Labels("xyz", torch.arange(3, device=device).reshape(-1, 1))],
        properties=Labels("distance", torch.zeros((1, 1), dtype=torch.int32, device=device)),
    )


def _empty_cell(positions: torch.Tensor) -> list[torch.Tensor]:
    cell = torch.zeros((3, 3), dtype=positions.dtype, device=positions.device)
    pbc = torch.zeros(3, dtype=torch.bool, device=positions.device)
    return [cell, pbc]


def fragment_separation(positions: torch.Tensor, interaction_range: float) -> float:
    """Shift (length unit of ``positions``) between consecutive pieces of
    :func:`fragment_system`: the parent's extent plus twice the model's
    interaction range, plus one, so that no piece sees another."""
    extent = (positions.max(dim=0).values - positions.min(dim=0).values).max()
    return float(extent) + 2.0 * interaction_range + 1.0


def fragment_system(
    types: torch.Tensor,
    positions: torch.Tensor,
    members: torch.Tensor,
    pairs: list[torch.Tensor],
    options: list[NeighborListOptions],
    separation: float,
) -> System:
    """Every sub-cluster of ``members`` as a disconnected piece of one System.

    :param types: ``(N,)`` atomic types of the parent.
    :param positions: ``(n_batch_atoms, 3)`` batch positions (see module doc).
    :param pairs: for each of ``options``, the parent's pairs
        (:func:`parent_pairs`).
    :param separation: shift (Å) between consecutive pieces
        (:func:`fragment_separation`).
    """
    piece, parent_atom, position_in_batch = batch_atoms(members)
    shift = torch.zeros((piece.shape[0], 3), dtype=positions.dtype, device=positions.device)
    shift[:, 0] = separation * piece.to(positions.dtype)
    cell, pbc = _empty_cell(positions)
    system = System(types=types[parent_atom], positions=positions + shift, cell=cell, pbc=pbc)
    for k in range(len(options)):
        _, batch_pairs = subcluster_pairs(pairs[k], members, position_in_batch)
        system.add_neighbor_list(options[k], neighbor_block(positions, batch_pairs))
    return system


def subcluster_systems(
    types: torch.Tensor,
    positions: torch.Tensor,
    members: torch.Tensor,
    pairs: list[torch.Tensor],
    options: list[NeighborListOptions],
) -> list[System]:
    """Every sub-cluster of ``members`` as its own System (same arguments as
    :func:`fragment_system`); system f holds rows ``start_f ..`` of ``positions``."""
    _, parent_atom, position_in_batch = batch_atoms(members)
    n_subclusters = members.shape[0]
    sizes = members.sum(dim=1)
    starts = torch.cumsum(sizes, dim=0) - sizes
    own_pairs: list[list[torch.Tensor]] = []
    for k in range(len(options)):
        subcluster_of_pair, batch_pairs = subcluster_pairs(pairs[k], members, position_in_batch)
        counts = torch.bincount(subcluster_of_pair, minlength=n_subclusters).tolist()
        own_pairs.append(list(torch.split(batch_pairs, counts)))
    cell, pbc = _empty_cell(positions)
    systems: list[System] = []
    for f in range(n_subclusters):
        start, size = int(starts[f]), int(sizes[f])
        own = positions[start : start + size]
        system = System(
            types=types[parent_atom[start : start + size]], positions=own, cell=cell, pbc=pbc
        )
        for k in range(len(options)):
            system.add_neighbor_list(options[k], neighbor_block(own, own_pairs[k][f] - start))
        systems.append(system)
    return systems
