"""All sub-clusters of finite systems as fragments of one System (TorchScript).

Evaluating the 2^N - 1 sub-clusters of a cluster one by one costs 2^N - 1 model
calls and as many neighbour-list builds. Here every sub-cluster up to
``max_order`` atoms becomes a *fragment* of a single batch System: fragment f
holds the parent's atoms of S_f, shifted rigidly by f times a separation larger
than the cluster plus the model's interaction range, so fragments never see each
other. Each fragment's neighbour list is the parent's list restricted to pairs
inside S_f: the same pairs, with the same distance vectors (and the same autograd
graph back to the parent's positions), so no neighbour search is repeated.
One call of the model with per-atom energies then gives, summed per fragment,
E(S) for every sub-cluster.

The module is TorchScript-compatible: the exported MBE models run it inside
LAMMPS, ASE or any metatomic engine.
"""

from typing import Dict, List, Optional, Tuple

import torch
from metatensor.torch import Labels, TensorBlock
from metatomic.torch import ModelOutput, NeighborListOptions, System

__all__ = ["FragmentBatch", "SubclusterEvaluator", "fragment_batch"]


class FragmentBatch:
    """The fragments of one parent system (TorchScript class).

    :param system: the batch System holding every fragment.
    :param parent_atom: ``(n_batch_atoms,)`` parent index of each batch atom.
    :param fragment: ``(n_batch_atoms,)`` fragment index of each batch atom.
    :param orders: ``(n_fragments,)`` number of atoms of each fragment.
    :param members: ``(n_fragments, n_parent_atoms)`` bool, atom i in fragment f.
    """

    def __init__(
        self,
        system: System,
        parent_atom: torch.Tensor,
        fragment: torch.Tensor,
        orders: torch.Tensor,
        members: torch.Tensor,
    ):
        self.system = system
        self.parent_atom = parent_atom
        self.fragment = fragment
        self.orders = orders
        self.members = members


def _subsets(n_atoms: int, max_order: int, device: torch.device) -> torch.Tensor:
    """``(n_fragments, n_atoms)`` membership of every subset with 1..max_order
    atoms, by order then lexicographically (each order extends the previous
    one's index tuples by a larger atom index)."""
    atoms = torch.arange(n_atoms, device=device)
    combos = atoms.reshape(-1, 1)
    rows: List[torch.Tensor] = []
    for order in range(1, min(max_order, n_atoms) + 1):
        if order > 1:
            larger = torch.nonzero(atoms.reshape(1, -1) > combos[:, -1:])
            combos = torch.cat([combos[larger[:, 0]], larger[:, 1:]], dim=1)
        member = torch.zeros((combos.shape[0], n_atoms), dtype=torch.bool, device=device)
        rows.append(member.scatter_(1, combos, True))
    return torch.cat(rows)


def fragment_batch(
    system: System,
    neighbor_lists: List[NeighborListOptions],
    max_order: int,
    interaction_range: float,
    members: Optional[torch.Tensor] = None,
) -> FragmentBatch:
    """Put the sub-clusters of a finite ``system`` into one batch System.

    :param system: a non-periodic system carrying the neighbour lists of
        ``neighbor_lists`` (as an engine prepares them for the model).
    :param max_order: largest sub-cluster size (1 <= max_order <= N).
    :param interaction_range: the model's interaction range (length unit of the
        model); fragments are separated by the cluster size plus twice this.
    :param members: ``(n_fragments, N)`` bool membership of the sub-clusters to
        build; default every subset of 1..max_order atoms.
    """
    if bool(system.pbc.any()):
        raise ValueError("the many-body expansion needs a non-periodic system")
    n_atoms = len(system)
    device = system.positions.device
    if members is None:
        members = _subsets(n_atoms, max_order, device)
    pairs = torch.nonzero(members)
    fragment, parent_atom = pairs[:, 0], pairs[:, 1]
    n_fragments = members.shape[0]

    positions = system.positions.detach()
    extent = float((positions.max(dim=0).values - positions.min(dim=0).values).max())
    separation = extent + 2.0 * interaction_range + 1.0
    shift = torch.zeros((n_fragments, 3), dtype=positions.dtype, device=device)
    shift[:, 0] = separation * torch.arange(n_fragments, dtype=positions.dtype, device=device)
    batch = System(
        types=system.types[parent_atom],
        positions=system.positions[parent_atom] + shift[fragment],
        cell=torch.zeros((3, 3), dtype=positions.dtype, device=device),
        pbc=torch.zeros(3, dtype=torch.bool, device=device),
    )

    # batch index of (fragment f, parent atom i), -1 where i is not in f
    position_in_batch = torch.full((n_fragments, n_atoms), -1, dtype=torch.long, device=device)
    position_in_batch[fragment, parent_atom] = torch.arange(len(fragment), device=device)
    for options in neighbor_lists:
        batch.add_neighbor_list(
            options, _restrict(system.get_neighbor_list(options), members, position_in_batch)
        )
    orders = members.sum(dim=1)
    return FragmentBatch(batch, parent_atom, fragment, orders, members)


def _restrict(
    neighbors: TensorBlock, members: torch.Tensor, position_in_batch: torch.Tensor
) -> TensorBlock:
    """The parent's pairs (i, j) repeated for every fragment holding both atoms."""
    first = neighbors.samples.column("first_atom").to(torch.long)
    second = neighbors.samples.column("second_atom").to(torch.long)
    both = members[:, first] & members[:, second]
    found = torch.nonzero(both)
    fragment, pair = found[:, 0], found[:, 1]
    samples = torch.stack(
        [
            position_in_batch[fragment, first[pair]],
            position_in_batch[fragment, second[pair]],
            torch.zeros_like(pair),
            torch.zeros_like(pair),
            torch.zeros_like(pair),
        ],
        dim=1,
    ).to(torch.int32)
    return TensorBlock(
        values=neighbors.values[pair],
        samples=Labels(neighbors.samples.names, samples),
        components=neighbors.components,
        properties=neighbors.properties,
    )


class SubclusterEvaluator(torch.nn.Module):
    """E(S) of every sub-cluster of finite systems, in one call of ``model``.

    :param model: the inner metatomic model module (``AtomisticModel.module``),
        predicting ``energy`` per atom.
    :param neighbor_lists: the neighbour lists the model requests.
    :param interaction_range: the model's interaction range.
    :param energy_unit: unit of the model's energy output.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        neighbor_lists: List[NeighborListOptions],
        interaction_range: float,
        energy_unit: str,
    ):
        super().__init__()
        self.model = model
        self.neighbor_lists = neighbor_lists
        self.interaction_range = interaction_range
        self.per_atom = {"energy": ModelOutput(unit=energy_unit, sample_kind="atom")}

    def forward(
        self, systems: List[System], max_order: int
    ) -> Tuple[List[FragmentBatch], List[torch.Tensor]]:
        """Per-atom energies of every fragment of every system.

        :return: the fragment batches, and for each the ``(n_batch_atoms,)``
            energies of its atoms; sum them per ``batch.fragment`` for E(S).
        """
        batches: List[FragmentBatch] = []
        for system in systems:
            batches.append(
                fragment_batch(system, self.neighbor_lists, max_order, self.interaction_range)
            )
        outputs: Dict[str, ModelOutput] = self.per_atom
        result = self.model([b.system for b in batches], outputs, None)
        block = result["energy"].block()
        values = block.values.reshape(-1)
        system_of = block.samples.column("system").to(torch.long)
        atom_of = block.samples.column("atom").to(torch.long)
        energies: List[torch.Tensor] = []
        for k, b in enumerate(batches):
            per_atom = torch.zeros(len(b.system), dtype=values.dtype, device=values.device)
            mask = system_of == k
            energies.append(per_atom.index_add(0, atom_of[mask], values[mask]))
        return batches, energies
