"""Sub-cluster energies inside TorchScript, for the exported MBE models.

:class:`SubclusterEvaluator` puts every sub-cluster (up to ``max_order``
atoms) of each finite system into one fragment System (:mod:`.batching`) and
runs the inner model once with per-atom energies. Batch positions are taken
from the parent's positions, so autograd of anything built from the result
flows back to the parent, as engines (ASE, LAMMPS) expect for forces.
"""

from typing import Dict, List

import torch
from metatomic.torch import ModelOutput, NeighborListOptions, System

from .batching import (
    batch_atoms,
    fragment_separation,
    fragment_system,
    parent_pairs,
    subset_members,
)

__all__ = ["SubclusterEvaluator"]


class SubclusterEvaluator(torch.nn.Module):
    """Per-atom energies of every sub-cluster of finite systems, in one call.

    :param model: the inner metatomic model module (``AtomisticModel.module``),
        able to predict ``energy`` per atom.
    :param neighbor_lists: the neighbour lists the model requests.
    :param interaction_range: the model's interaction range (model length unit).
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

    def forward(self, systems: List[System], max_order: int) -> List[List[torch.Tensor]]:
        """For each system, ``[members, energies]``: the ``(n_fragments, N)``
        membership of its sub-clusters (1..max_order atoms) and the energy of
        each batch atom, in ``torch.nonzero(members)`` order (fragment by
        fragment, atoms ascending). Sum per fragment for E(S)."""
        batches: List[System] = []
        memberships: List[torch.Tensor] = []
        for system in systems:
            if bool(system.pbc.any()):
                raise ValueError("the many-body expansion needs a non-periodic system")
            positions = system.positions
            members = subset_members(len(system), max_order, positions.device)
            pairs: List[torch.Tensor] = []
            for options in self.neighbor_lists:
                pairs.append(parent_pairs(positions, options.cutoff, options.full_list))
            separation = fragment_separation(positions, self.interaction_range)
            parent_atom = batch_atoms(members)[1]
            batches.append(
                fragment_system(
                    system.types,
                    positions[parent_atom],
                    members,
                    pairs,
                    self.neighbor_lists,
                    separation,
                )
            )
            memberships.append(members)
        outputs: Dict[str, ModelOutput] = self.per_atom
        block = self.model(batches, outputs, None)["energy"].block()
        values = block.values.reshape(-1)
        system_of = block.samples.column("system").to(torch.long)
        atom_of = block.samples.column("atom").to(torch.long)
        results: List[List[torch.Tensor]] = []
        for k in range(len(batches)):
            mine = system_of == k
            energies = torch.zeros(len(batches[k]), dtype=values.dtype, device=values.device)
            results.append([memberships[k], energies.index_add(0, atom_of[mine], values[mine])])
        return results
