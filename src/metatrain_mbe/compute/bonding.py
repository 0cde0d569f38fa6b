"""Molecules found by bonding inside TorchScript, for exported models whose
bodies are molecules.

An engine hands a model positions, types and cell only (LAMMPS feeds no extra
per-atom input, and metatomic's ase calculator only a few fixed ones), so an
exported model finds the molecules itself, by the rule of ``mtt-mbe
fragments`` (:mod:`metatrain_mbe.data.fragments`): :func:`bonded_fragments`,
the connected components of the graph of atom pairs at most
(1 - BOND_TOLERANCE) × mult × (r_cov(i) + r_cov(j)) apart, with ase's covalent
radii, ions bonded to nothing (:func:`bond_cutoff_table`, baked into the model
at export). Pairs that the command would find ambiguous count as not bonded
(a model in MD cannot refuse a geometry); wherever the command assigns
fragments, the model assigns the same.
"""

import math
from typing import List, Optional

import torch

__all__ = ["bond_cutoff_table", "bonded_fragments"]


def bond_cutoff_table(
    atomic_types: List[int], mult: Optional[float] = None, length_scale: float = 1.0
) -> torch.Tensor:
    """Per-atom bonding radii by atomic number, for :func:`bonded_fragments`:
    ``table[Z]`` is (1 - BOND_TOLERANCE) × ``mult`` × ase's covalent radius of
    Z (Å) × ``length_scale`` (Å to the model's length unit), so that two atoms
    are bonded when at most ``table[Z_i] + table[Z_j]`` apart, as ``mtt-mbe
    fragments`` decides; -inf for the ions of
    :data:`~metatrain_mbe.data.fragments.IONS` (bonded to nothing), 0 for the
    atomic numbers not in ``atomic_types``.

    :param atomic_types: atomic numbers (metatomic types) the model supports.
    :param mult: factor on the covalent radii (default
        :data:`~metatrain_mbe.data.fragments.DEFAULT_MULT`).
    """
    from ase.data import atomic_numbers, covalent_radii

    from ..data.fragments import BOND_TOLERANCE, DEFAULT_MULT, IONS

    mult = DEFAULT_MULT if mult is None else mult
    if not (math.isfinite(mult) and mult > 0):
        raise ValueError(f"mult {mult} is not a finite number > 0")
    ions = {atomic_numbers[symbol] for symbol in IONS}
    table = torch.zeros(max(list(atomic_types) + [0]) + 1, dtype=torch.float64)
    for z in atomic_types:
        if z < 1 or z >= len(covalent_radii):
            raise ValueError(f"no covalent radius for atomic type {z}")
        if z in ions:
            table[z] = -math.inf
        else:
            table[z] = (1 - BOND_TOLERANCE) * mult * float(covalent_radii[z]) * length_scale
    return table


def bonded_fragments(
    types: torch.Tensor, positions: torch.Tensor, cutoffs: torch.Tensor
) -> torch.Tensor:
    """The fragment (molecule) of each atom: connected components of the graph
    of pairs (i, j) at most ``cutoffs[types[i]] + cutoffs[types[j]]`` apart.

    :param types: ``(N,)`` atomic types.
    :param positions: ``(N, 3)`` positions (unit of ``cutoffs``), not differentiated.
    :param cutoffs: per-type cutoffs (:func:`bond_cutoff_table`).
    :return: ``(N,)`` int64 fragment ids 0 .. K-1, numbered by their first atom.
    """
    n_atoms = positions.shape[0]
    label = torch.arange(n_atoms, device=positions.device)
    if n_atoms == 0:
        return label
    coordinates = positions.detach()
    radius = cutoffs.to(device=coordinates.device, dtype=coordinates.dtype)[types.to(torch.long)]
    bonded = torch.cdist(coordinates, coordinates) <= radius.reshape(-1, 1) + radius.reshape(1, -1)
    bonded.fill_diagonal_(True)
    # every atom takes the smallest label among its neighbours until none
    # changes: then each component carries the index of its first atom
    unbonded = torch.full((n_atoms, n_atoms), n_atoms, dtype=label.dtype, device=label.device)
    for _ in range(n_atoms):
        smallest = torch.where(bonded, label.reshape(1, -1), unbonded).min(dim=1).values
        if bool(torch.equal(smallest, label)):
            break
        label = smallest
    return torch.unique(label, return_inverse=True)[1].to(torch.int64)
