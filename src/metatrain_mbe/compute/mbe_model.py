"""TorchScript wrapper adding many-body-expansion outputs to a metatomic model.

:class:`MBEModel` wraps the module of an exported SOAP-BPNN, PET or MACE model
(any metatomic model with per-atom energies). Its ``energy`` output is the inner
model's, unchanged, unless ``truncate`` is set: then ``energy`` is the k-body
truncated expansion E_k of the inner model (forces by autograd, as usual). It
adds

- ``mbe::energy_by_order``: one row per system, properties ``body_order`` =
  1..max_order, values the per-order sums Σ_{|S|=m} V(S) in the energy unit;
- with ``variants``, one energy variant ``energy/mbe_K`` (:func:`variant_output`)
  per K: the K-body truncated expansion E_K, beside the complete ``energy``.

Each is computed only when requested: a call asking for ``energy`` alone (an
MD step with the complete energy) runs the inner model alone.

The bodies are atoms (``bodies="atoms"``) or molecules (``bodies="molecules"``,
found in each system by bonding,
:func:`~metatrain_mbe.compute.bonding.bonded_fragments`): sub-clusters are
then unions of whole molecules, orders count molecules, and the one-body terms
are the molecules' own energies in the parent's geometry.

All come from sub-cluster energies E(T) only, through

    Σ_{|S|=m} V(S) = Σ_{|T|<=m} (-1)^(m-|T|) C(N-|T|, m-|T|) E(T),

(N bodies, |T| counted in bodies) which is the Möbius inversion summed per
order; E_k is the sum of these for m <= k. Every sub-cluster is evaluated in
one call of the inner model, or in calls of ``batch_size`` sub-clusters
(:class:`~metatrain_mbe.compute.subcluster_evaluator.SubclusterEvaluator`),
once for all the outputs of a call (up to the largest order any of them needs).

A system in a periodic cell (how engines pass clusters: LAMMPS ``boundary p p
p``, i-PI) gets the MBE outputs of the isolated cluster when no atom is within
the interaction range of a periodic image of an atom, itself included
(:func:`~metatrain_mbe.compute.isolation.check_isolated`, at most 26
neighbouring cells measured, O(27 N^2)); otherwise the call is refused in one
line naming the closest image's distance and the range. The sub-clusters are
evaluated as non-periodic systems, and the inner model's own outputs of the
whole system are then the isolated cluster's too (no neighbour pair crosses
the cell's boundary).

With ``cutoffs`` the family is screened (:mod:`.screening`): a sub-cluster of
m bodies is kept when every two of its bodies are within R_m (molecules:
their closest atoms), and every output is a sum over the kept sub-clusters,
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

__all__ = ["MBEModel", "ENERGY_BY_ORDER", "BODIES", "MBE_VARIANT", "variant_output"]

ENERGY_BY_ORDER = "mbe::energy_by_order"
#: what a body of the expansion can be
BODIES = ("atoms", "molecules")
#: prefix of the energy variants: ``energy/mbe_K`` is the expansion truncated at K bodies
MBE_VARIANT = "mbe_"


def variant_output(order: int) -> str:
    """The output name of the energy variant truncated at ``order`` bodies,
    ``energy/mbe_K`` (a metatomic variant of ``energy``: ASE
    ``variants={"energy": "mbe_K"}``, LAMMPS ``variant/energy mbe_K``, i-PI
    ``energy_variant=mbe_K``)."""
    return f"energy/{MBE_VARIANT}{order}"


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
    :param interaction_range: the inner model's interaction range (model length
        unit, Å for metatrain models; ``capabilities().interaction_range``, for
        message-passing models a multiple of the cutoff). A periodic system
        must keep every periodic image of its atoms farther than it (and than
        every neighbour-list cutoff).
    :param energy_unit: unit of the inner model's energy.
    :param max_order: largest body order of ``mbe::energy_by_order``
        (0: complete, every order up to the number of bodies; with
        ``cutoffs``, 0 is the largest of ``truncate`` and ``variants``).
    :param truncate: when > 0, ``energy`` is the truncated expansion E_k with
        k = ``truncate``; 0 keeps the inner model's energy.
    :param variants: body orders K of the energy variants ``energy/mbe_K``
        (:func:`variant_output`), each the truncated expansion E_K (energy
        unit), computed only when requested.
    :param max_atoms: largest number of bodies expanded completely (2^N
        sub-clusters).
    :param cutoffs: distance screening (model length unit): R_m of order m at
        index m - 1, ``inf`` for an order not screened, orders past the end
        take the last entry; non-increasing (the family is then downward
        closed). Needs ``truncate``, ``variants`` or ``max_order``. Empty: no
        screening.
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
    truncations: Dict[str, int]

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
        variants: Optional[List[int]] = None,
    ):
        super().__init__()
        if bodies not in BODIES:
            raise ValueError(f"bodies must be one of {', '.join(BODIES)}, got '{bodies}'")
        if bodies == "molecules" and bond_cutoffs is None:
            raise ValueError("molecules as bodies need the bonding cutoffs")
        variants = [int(k) for k in variants] if variants is not None else []
        if any(k < 1 for k in variants):
            raise ValueError(f"variant body orders must be >= 1, got {variants}")
        # the truncated energies by output name: E_k of each
        truncations: Dict[str, int] = {variant_output(k): k for k in variants}
        if truncate > 0:
            truncations["energy"] = truncate
        cutoffs = [float(r) for r in cutoffs] if cutoffs is not None else []
        if cutoffs:
            if max_order <= 0 and not truncations:
                raise ValueError("a screened expansion needs truncate, variants or max_order")
            if any(not r > 0 for r in cutoffs) or any(b > a for a, b in zip(cutoffs, cutoffs[1:])):
                raise ValueError(f"cutoffs must be positive and non-increasing, got {cutoffs}")
            if max_order <= 0:
                max_order = max(truncations.values())
        self.evaluator = SubclusterEvaluator(
            model, neighbor_lists, interaction_range, energy_unit, batch_size
        )
        self._neighbor_lists = neighbor_lists
        self.max_order = max_order
        self.truncations = truncations
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
        """The largest sub-cluster (in bodies) an output of orders up to
        ``wanted`` needs (0: every order); refuses a complete, unscreened
        expansion of more than ``max_atoms`` bodies."""
        order = min(wanted, n_bodies) if wanted > 0 else n_bodies
        if order == n_bodies and n_bodies > self.max_atoms and not self.screened:
            raise ValueError(
                f"a complete many-body expansion of {n_bodies} {self.bodies} needs "
                f"2^{n_bodies} sub-clusters (limit {self.max_atoms}); export with --max-order "
                "(and --cutoff, for large clusters)"
            )
        return order

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
        """The inner model's outputs, ``energy`` (possibly truncated), the
        energy variants and ``mbe::energy_by_order``: those requested only."""
        want_orders = self.orders_output in outputs
        truncated: List[str] = []  # the requested truncated energies
        inner: Dict[str, ModelOutput] = {}
        for name, output in outputs.items():
            if name in self.truncations:
                truncated.append(name)
            elif name != self.orders_output:
                inner[name] = output
        if not want_orders and len(truncated) == 0:  # an MD step: the inner model alone
            return self.evaluator.model(systems, outputs, selected_atoms)

        results: Dict[str, TensorMap] = {}
        if len(inner) > 0:
            results = self.evaluator.model(systems, inner, selected_atoms)

        bodies: List[torch.Tensor] = []
        counts: List[int] = []
        largest = 0  # the orders of mbe::energy_by_order
        depth = 0  # the largest sub-cluster evaluated
        for system in systems:
            body_of_atom = self.bodies_of(system)
            n_bodies = int(body_of_atom.max()) + 1 if len(system) > 0 else 0
            bodies.append(body_of_atom)
            counts.append(n_bodies)
            if want_orders:
                largest = max(largest, self._order_for(n_bodies, self.max_order))
            for name in truncated:
                depth = max(depth, self._order_for(n_bodies, self.truncations[name]))
        depth = max(depth, largest)
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
        per_atom: Dict[str, List[torch.Tensor]] = {}
        for name in truncated:
            per_atom[name] = []
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
            else:
                weights = order_weights(n_bodies, top).to(atom_energy)
            for name in truncated:
                cut = min(self.truncations[name], top)
                if self.screened:
                    coefficients = weights[:, :cut].sum(dim=1)
                else:
                    # W[m, t] = 0 for t > m
                    coefficients = weights[:cut].sum(dim=0)[orders - 1]
                contribution = coefficients[subcluster] * atom_energy
                per_atom[name].append(
                    torch.zeros(
                        n_atoms, dtype=atom_energy.dtype, device=atom_energy.device
                    ).index_add(0, parent_atom, contribution)
                )
            if want_orders:
                if self.screened:
                    sums = subcluster_energy @ weights
                else:
                    e_t = torch.zeros(top, dtype=atom_energy.dtype, device=atom_energy.device)
                    sums = weights @ e_t.index_add(0, orders - 1, subcluster_energy)
                row = torch.zeros(largest, dtype=atom_energy.dtype, device=atom_energy.device)
                keep = min(largest, top)
                row[:keep] = sums[:keep]
                by_order.append(row)
            k_system += 1

        if want_orders:
            results[self.orders_output] = _per_system_map(
                torch.stack(by_order), "body_order", torch.arange(1, largest + 1)
            )
        for name in truncated:
            results[name] = _energy_map(per_atom[name], outputs[name], selected_atoms)
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
