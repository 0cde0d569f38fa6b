"""Sub-cluster energies inside TorchScript, for the exported MBE models.

The bodies of the expansion are atoms, or molecules (:mod:`.bonding`): then
every sub-cluster is a union of whole molecules. :class:`SubclusterEvaluator`
puts every sub-cluster (1 .. ``max_order`` bodies) of each finite system into
one batch System, as disconnected pieces (:mod:`.batching`), and runs the inner
model once with per-atom energies. A system in a periodic cell is first
checked to be an isolated cluster (:func:`.isolation.check_isolated`: no atom
within the interaction range of a periodic image) and is then evaluated as
that cluster, its sub-clusters as non-periodic systems. Batch positions are taken from the parent's
positions, so autograd of anything built from the result flows back to the
parent, as engines (ASE, LAMMPS) expect for forces.
"""

from typing import Dict, List, Optional

import torch
from metatomic.torch import ModelOutput, NeighborListOptions, System

from .batching import (
    batch_atoms,
    fragment_separation,
    fragment_system,
    parent_pairs,
    subset_members,
)
from .isolation import check_isolated

__all__ = ["EXPORT_CPU_BATCH_SIZE", "SubclusterEvaluator"]

#: sub-clusters per model call on a CPU with ``batch_size=-1``: on an (H2O)_10
#: cluster (1023 unions) calls of 64 were 6.6 times faster than one call (CPU s)
EXPORT_CPU_BATCH_SIZE = 64


class SubclusterEvaluator(torch.nn.Module):
    """Per-atom energies of every sub-cluster of finite systems, in one call.

    :param model: the inner metatomic model module (``AtomisticModel.module``),
        able to predict ``energy`` per atom.
    :param neighbor_lists: the neighbour lists the model requests.
    :param interaction_range: the model's interaction range (model length unit,
        Å for metatrain models); a periodic system is accepted when no atom is
        within it (or within a neighbour-list cutoff, if larger) of a periodic
        image (:func:`~metatrain_mbe.compute.isolation.check_isolated`).
    :param energy_unit: unit of the model's energy output.
    :param batch_size: 0: every sub-cluster of every system in one call of the
        model; > 0: calls of at most ``batch_size`` sub-clusters of one system
        each (sub-clusters listed by size, so a call holds unions of about the
        same size); -1: :data:`EXPORT_CPU_BATCH_SIZE` on a CPU, one call on other
        devices (smaller calls are several times faster on a CPU, where PET pads
        every atom's neighbours to the largest count of the call).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        neighbor_lists: List[NeighborListOptions],
        interaction_range: float,
        energy_unit: str,
        batch_size: int = 0,
    ):
        super().__init__()
        self.model = model
        self.neighbor_lists = neighbor_lists
        self.interaction_range = interaction_range
        # the distance a periodic image must stay beyond (isolation.check_isolated)
        self.isolation_range = max([interaction_range] + [o.cutoff for o in neighbor_lists])
        self.per_atom = {"energy": ModelOutput(unit=energy_unit, sample_kind="atom")}
        self.batch_size = batch_size
        self.cpu_batch_size = EXPORT_CPU_BATCH_SIZE  # TorchScript reads no module globals

    def forward(
        self,
        systems: List[System],
        max_order: int,
        bodies: List[torch.Tensor],
        families: Optional[List[torch.Tensor]] = None,
    ) -> List[List[torch.Tensor]]:
        """For each system, ``[members, orders, energies]``: the
        ``(n_subclusters, N)`` atom membership of its sub-clusters (the unions
        of 1..max_order bodies), the number of bodies of each, and the energy
        of each batch atom, in ``torch.nonzero(members)`` order (sub-cluster by
        sub-cluster, atoms ascending). Sum per sub-cluster for E(S).

        :param bodies: for each system, the body of each atom, 0 .. K-1
            (``arange(N)`` when the bodies are the atoms).
        :param families: for each system, the ``(n_subclusters, K)`` body
            membership of the sub-clusters to evaluate instead of every subset
            of 1..max_order bodies (a screened family,
            :func:`~metatrain_mbe.compute.screening.tuple_members`).
        """
        size = self.batch_size
        if size < 0:
            on_cpu = len(systems) > 0 and systems[0].positions.device.type == "cpu"
            size = self.cpu_batch_size if on_cpu else 0
        batches: List[System] = []
        owner: List[int] = []  # the input system of each batch
        memberships: List[torch.Tensor] = []
        orders: List[torch.Tensor] = []
        for k, system in enumerate(systems):
            check_isolated(system, self.isolation_range)
            positions = system.positions
            body_of_atom = bodies[k].to(device=positions.device, dtype=torch.long)
            n_bodies = int(body_of_atom.max()) + 1 if len(body_of_atom) > 0 else 0
            if families is None:
                of_bodies = subset_members(n_bodies, max_order, positions.device)
            else:
                of_bodies = families[k].to(positions.device)
            members = of_bodies[:, body_of_atom]
            pairs: List[torch.Tensor] = []
            for options in self.neighbor_lists:
                pairs.append(parent_pairs(positions, options.cutoff, options.full_list))
            separation = fragment_separation(positions, self.interaction_range)
            n_rows = members.shape[0]
            step = size if size > 0 else max(n_rows, 1)
            for start in range(0, n_rows, step):
                rows = members[start : start + step]
                parent_atom = batch_atoms(rows)[1]
                batches.append(
                    fragment_system(
                        system.types,
                        positions[parent_atom],
                        rows,
                        pairs,
                        self.neighbor_lists,
                        separation,
                    )
                )
                owner.append(k)
            memberships.append(members)
            orders.append(of_bodies.sum(dim=1))
        outputs: Dict[str, ModelOutput] = self.per_atom
        calls: List[List[System]] = [batches]
        if size > 0:
            calls = [[batch] for batch in batches]
        per_batch: List[torch.Tensor] = []
        for call in calls:
            block = self.model(call, outputs, None)["energy"].block()
            values = block.values.reshape(-1)
            system_of = block.samples.column("system").to(torch.long)
            atom_of = block.samples.column("atom").to(torch.long)
            for b in range(len(call)):
                mine = system_of == b
                energies = torch.zeros(len(call[b]), dtype=values.dtype, device=values.device)
                per_batch.append(energies.index_add(0, atom_of[mine], values[mine]))
        results: List[List[torch.Tensor]] = []
        for k in range(len(systems)):
            own: List[torch.Tensor] = []
            for b in range(len(batches)):
                if owner[b] == k:
                    own.append(per_batch[b])
            results.append([memberships[k], orders[k], torch.cat(own)])
        return results
