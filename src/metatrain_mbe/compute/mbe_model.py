"""TorchScript wrapper adding many-body-expansion outputs to a metatomic model.

:class:`MBEModel` wraps the module of an exported SOAP-BPNN, PET or MACE model
(any metatomic model with per-atom energies). Its ``energy`` output is the inner
model's, unchanged, unless ``truncate`` is set: then ``energy`` is the k-body
truncated expansion E_k of the inner model (forces by autograd, as usual). It
adds ``mbe::energy_by_order``: one row per system, properties ``body_order`` =
1..max_order, values the per-order sums Σ_{|S|=m} V(S) in the energy unit.

The bodies are atoms (``bodies="atoms"``) or molecules (``bodies="molecules"``,
found in each system by bonding,
:func:`~metatrain_mbe.compute.bonding.bonded_fragments`): sub-clusters are
then unions of whole molecules, orders count molecules, and the one-body terms
are the molecules' own energies in the parent's geometry.

Both come from sub-cluster energies E(T) only, through

    Σ_{|S|=m} V(S) = Σ_{|T|<=m} (-1)^(m-|T|) C(N-|T|, m-|T|) E(T),

(N bodies, |T| counted in bodies) which is the Möbius inversion summed per
order; E_k is the sum of these for m <= k. Every sub-cluster is evaluated in
one call of the inner model, or in calls of ``batch_size`` sub-clusters
(:class:`~metatrain_mbe.compute.subcluster_evaluator.SubclusterEvaluator`).

With ``cutoffs`` the family is screened (:mod:`.screening`): a sub-cluster of
m bodies is kept when every two of its bodies are within R_m (molecules:
their closest atoms), and both outputs are sums over the kept sub-clusters,
Σ_{kept |S|=m} V(S) = Σ_{kept T} W[T, m-1] E(T), with the integer weights of
:func:`~metatrain_mbe.compute.screening.screened_weights`. The family is
enumerated in the model at every call; its number of sub-clusters grows
linearly with N at a fixed order and cutoff, and the body distances take one
dense (N, N) matrix (O(N^2) memory in the number of bodies).
"""

from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import ModelOutput, NeighborListOptions, System

from ..expansion.subsets import DEFAULT_MAX_ATOMS
from .bonding import bonded_fragments
from .screening import body_distances, screened_tuples, screened_weights, tuple_members
from .subcluster_evaluator import SubclusterEvaluator

__all__ = ["MBEModel", "ENERGY_BY_ORDER", "BODIES"]

ENERGY_BY_ORDER = "mbe::energy_by_order"
#: what a body of the expansion can be
BODIES = ("atoms", "molecules")


def _binomial(n: int, k: int) -> float:
    if k < 0 or k > n:
        return 0.0
    result = 1
    for i in range(k):
        result = result * (n - i) // (i + 1)
    return float(result)


def order_weights(n_bodies: int, max_order: int) -> torch.Tensor:
    """``(max_order, max_order)`` matrix W with Σ_{|S|=m} V(S) = Σ_t W[m-1, t-1] e_t,
    where e_t is the sum of E(T) over the sub-clusters of t bodies (atoms or
    molecules) of a system of ``n_bodies`` bodies."""
    weights = torch.zeros((max_order, max_order), dtype=torch.float64)
    for m in range(1, max_order + 1):
        for t in range(1, m + 1):
            sign = 1.0 if (m - t) % 2 == 0 else -1.0
            weights[m - 1, t - 1] = sign * _binomial(n_bodies - t, m - t)
    return weights


class MBEModel(torch.nn.Module):
    """A metatomic model module with many-body-expansion outputs.

    :param model: the inner module (``AtomisticModel.module`` of a loaded model).
    :param neighbor_lists: the neighbour lists the inner model requests.
    :param interaction_range: the inner model's interaction range.
    :param energy_unit: unit of the inner model's energy.
    :param max_order: largest body order of ``mbe::energy_by_order``
        (0: complete, every order up to the number of bodies; with
        ``cutoffs``, 0 is ``truncate``).
    :param truncate: when > 0, ``energy`` is the truncated expansion E_k with
        k = ``truncate``; 0 keeps the inner model's energy.
    :param max_atoms: largest number of bodies expanded completely (2^N
        sub-clusters).
    :param cutoffs: distance screening (model length unit): R_m of order m at
        index m - 1, ``inf`` for an order not screened, orders past the end
        take the last entry; non-increasing (the family is then downward
        closed). Needs ``truncate`` or ``max_order``. Empty: no screening.
    :param bodies: ``"atoms"`` or ``"molecules"`` (:data:`BODIES`).
    :param batch_size: 0: every sub-cluster in one call of the inner model;
        > 0 calls of at most this many sub-clusters; -1 64 on a CPU, one call
        elsewhere (see
        :class:`~metatrain_mbe.compute.subcluster_evaluator.SubclusterEvaluator`).
    :param bond_cutoffs: with molecules, the per-type bonding cutoffs
        (:func:`~metatrain_mbe.compute.bonding.bond_cutoff_table`, model
        length unit).
    """

    bond_cutoffs: torch.Tensor
    cutoffs: List[float]

    def __init__(
        self,
        model: torch.nn.Module,
        neighbor_lists: List[NeighborListOptions],
        interaction_range: float,
        energy_unit: str,
        max_order: int = 0,
        truncate: int = 0,
        max_atoms: int = DEFAULT_MAX_ATOMS,
        bodies: str = "atoms",
        bond_cutoffs: Optional[torch.Tensor] = None,
        batch_size: int = -1,
        cutoffs: Optional[List[float]] = None,
    ):
        super().__init__()
        if bodies not in BODIES:
            raise ValueError(f"bodies must be one of {', '.join(BODIES)}, got '{bodies}'")
        if bodies == "molecules" and bond_cutoffs is None:
            raise ValueError("molecules as bodies need the bonding cutoffs")
        cutoffs = [float(r) for r in cutoffs] if cutoffs is not None else []
        if cutoffs:
            if max_order <= 0 and truncate <= 0:
                raise ValueError("a screened expansion needs truncate or max_order")
            if any(not r > 0 for r in cutoffs) or any(b > a for a, b in zip(cutoffs, cutoffs[1:])):
                raise ValueError(f"cutoffs must be positive and non-increasing, got {cutoffs}")
            if max_order <= 0:
                max_order = truncate
        self.evaluator = SubclusterEvaluator(
            model, neighbor_lists, interaction_range, energy_unit, batch_size
        )
        self._neighbor_lists = neighbor_lists
        self.max_order = max_order
        self.truncate = truncate
        self.max_atoms = max_atoms
        self.energy_unit = energy_unit
        self.orders_output = ENERGY_BY_ORDER
        self.molecules = bodies == "molecules"
        self.bodies = bodies
        self.cutoffs = cutoffs
        self.screened = len(cutoffs) > 0
        if bond_cutoffs is None:
            bond_cutoffs = torch.zeros(0, dtype=torch.float64)
        self.register_buffer("bond_cutoffs", bond_cutoffs)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        """The inner model's neighbour lists (a scripted inner module may not
        declare them any more)."""
        return self._neighbor_lists

    def _order_for(self, n_bodies: int, wanted: int) -> int:
        if wanted > 0:
            return min(wanted, n_bodies)
        if n_bodies > self.max_atoms:
            raise ValueError(
                f"a complete many-body expansion of {n_bodies} {self.bodies} needs "
                f"2^{n_bodies} sub-clusters (limit {self.max_atoms}); export with --max-order "
                "(and --cutoff, for large clusters)"
            )
        return n_bodies

    def bodies_of(self, system: System) -> torch.Tensor:
        """The body of each atom of ``system``, 0 .. K-1: the atom itself, or
        its molecule (bonded component, numbered by first atom)."""
        if self.molecules:
            return bonded_fragments(system.types, system.positions, self.bond_cutoffs)
        return torch.arange(len(system), device=system.positions.device)

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        """The inner model's outputs, ``energy`` (possibly truncated) and the
        MBE outputs."""
        want_orders = self.orders_output in outputs
        want_truncated = "energy" in outputs and self.truncate > 0
        if not (want_orders or want_truncated):  # an MD step: the inner model alone
            return self.evaluator.model(systems, outputs, selected_atoms)

        inner: Dict[str, ModelOutput] = {}
        for name, output in outputs.items():
            if name != self.orders_output and not (name == "energy" and self.truncate > 0):
                inner[name] = output
        results: Dict[str, TensorMap] = {}
        if len(inner) > 0:
            results = self.evaluator.model(systems, inner, selected_atoms)

        bodies: List[torch.Tensor] = []
        counts: List[int] = []
        largest = 0
        depth = 0
        for system in systems:
            body_of_atom = self.bodies_of(system)
            n_bodies = int(body_of_atom.max()) + 1 if len(system) > 0 else 0
            bodies.append(body_of_atom)
            counts.append(n_bodies)
            largest = max(largest, self._order_for(n_bodies, self.max_order))
            if want_truncated:
                depth = max(depth, min(self.truncate, n_bodies))
        depth = max(depth, largest if want_orders else 0)
        families: Optional[List[torch.Tensor]] = None
        screened: List[torch.Tensor] = []  # per system, the weights of its family
        if self.screened:
            families = []
            for k, system in enumerate(systems):
                distances = body_distances(system.positions, bodies[k], counts[k])
                tuples = screened_tuples(distances, self.cutoffs, depth)
                families.append(tuple_members(tuples, counts[k]))
                screened.append(screened_weights(tuples, counts[k]))
        by_order: List[torch.Tensor] = []
        per_atom: List[torch.Tensor] = []
        k_system = 0
        for members, orders, atom_energy in self.evaluator(systems, depth, bodies, families):
            n_atoms = members.shape[1]
            n_bodies = counts[k_system]
            found = torch.nonzero(members)
            subcluster, parent_atom = found[:, 0], found[:, 1]
            subcluster_energy = torch.zeros(
                orders.shape[0], dtype=atom_energy.dtype, device=atom_energy.device
            ).index_add(0, subcluster, atom_energy)
            top = int(orders.max())
            if self.screened:
                # per sub-cluster T and order m: (-1)^(m-|T|) #{kept S ⊇ T, |S| = m}
                weights = screened[k_system].to(atom_energy)
                sums = subcluster_energy @ weights
                coefficients = weights[:, : min(self.truncate, top)].sum(dim=1)
            else:
                e_t = torch.zeros(top, dtype=atom_energy.dtype, device=atom_energy.device)
                e_t = e_t.index_add(0, orders - 1, subcluster_energy)
                weights = order_weights(n_bodies, top).to(atom_energy)
                sums = weights @ e_t
                # W[m, t] = 0 for t > m
                coefficients = weights[: min(self.truncate, top)].sum(dim=0)[orders - 1]
            k_system += 1
            row = torch.zeros(largest, dtype=atom_energy.dtype, device=atom_energy.device)
            keep = min(largest, top)
            row[:keep] = sums[:keep]
            by_order.append(row)
            if want_truncated:
                contribution = coefficients[subcluster] * atom_energy
                per_atom.append(
                    torch.zeros(
                        n_atoms, dtype=atom_energy.dtype, device=atom_energy.device
                    ).index_add(0, parent_atom, contribution)
                )

        if want_orders:
            results[self.orders_output] = _per_system_map(
                torch.stack(by_order), "body_order", torch.arange(1, largest + 1)
            )
        if want_truncated:
            results["energy"] = _energy_map(per_atom, outputs["energy"], selected_atoms)
        return results


def _per_system_map(values: torch.Tensor, name: str, properties: torch.Tensor) -> TensorMap:
    device = values.device
    samples = torch.arange(values.shape[0], device=device, dtype=torch.int32).reshape(-1, 1)
    block = TensorBlock(
        values=values,
        samples=Labels(["system"], samples),
        components=[],
        properties=Labels([name], properties.to(device=device, dtype=torch.int32).reshape(-1, 1)),
    )
    return TensorMap(Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device)), [block])


def _energy_map(
    per_atom: List[torch.Tensor], output: ModelOutput, selected_atoms: Optional[Labels]
) -> TensorMap:
    device = per_atom[0].device
    system = torch.cat(
        [torch.full((len(e),), k, dtype=torch.int32, device=device) for k, e in enumerate(per_atom)]
    )
    atom = torch.cat([torch.arange(len(e), dtype=torch.int32, device=device) for e in per_atom])
    values = torch.cat(per_atom)
    samples = Labels(["system", "atom"], torch.stack([system, atom], dim=1))
    if selected_atoms is not None:
        keep = samples.select(selected_atoms)
        samples = Labels(["system", "atom"], samples.values[keep])
        values = values[keep]
    properties = Labels(["energy"], torch.zeros((1, 1), dtype=torch.int32, device=device))
    if output.sample_kind != "atom":
        n_systems = len(per_atom)
        values = torch.zeros(n_systems, dtype=values.dtype, device=device).index_add(
            0, samples.column("system").to(torch.long), values
        )
        samples = Labels(
            ["system"], torch.arange(n_systems, dtype=torch.int32, device=device).reshape(-1, 1)
        )
    block = TensorBlock(
        values=values.reshape(-1, 1), samples=samples, components=[], properties=properties
    )
    return TensorMap(Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device)), [block])
