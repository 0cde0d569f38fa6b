"""Bulk-like hydrogen frames, a stand-in for the bulk data of Cheng et al.

The paper cut its clusters from bulk hydrogen configurations of Cheng et al.
(Nature 585, 217, 2020) at low (0.46 g/cm³, molecular, insulating) and high
(1.34 g/cm³, atomic, metallic) density. When no such data is at hand,
:func:`hydrogen_bulk` makes random periodic packings with the same densities:
randomly oriented H2 molecules (0.74 Å bonds) at low density, single atoms at
high density, placed with minimum-distance rejection sampling. They are not
equilibrated liquids: use real bulk frames when you have them. Any other
density (the paper's intermediate ones, 0.720 to 1.25 g/cm³, for its
extrapolation test) takes a regime's packing (molecules or atoms) with its
minimum distances scaled by (ρ_regime / ρ)^(1/3), as the spacing of a
uniform packing scales.

>>> frame = hydrogen_bulk("high", n_atoms=32, seed=0)
>>> round(density(frame), 2)
1.34
"""

from __future__ import annotations

import ase
import numpy as np
from ase.units import _amu

from ..errors import MBEInputError

__all__ = ["REGIMES", "density", "hydrogen_bulk"]

#: density (g/cm³), molecular or not, and minimum distances (Å) between
#: molecules' atoms / atoms, per regime
REGIMES = {
    "low": {"density": 0.46, "molecular": True, "min_distance": 1.25},
    "high": {"density": 1.34, "molecular": False, "min_distance": 0.85},
}
_BOND = 0.74  # Å, H2 bond length


def density(atoms: ase.Atoms) -> float:
    """Mass density of a periodic frame in g/cm³."""
    grams = atoms.get_masses().sum() * _amu * 1e3
    return float(grams / (atoms.get_volume() * 1e-24))


def hydrogen_bulk(
    regime: str, n_atoms: int = 64, seed: int = 0, density: float | None = None
) -> ase.Atoms:
    """A random periodic hydrogen frame of ``regime`` ("low" or "high").

    :param n_atoms: number of atoms, at least 2 (even for the molecular regime).
    :param density: mass density in g/cm³ instead of the regime's (the
        regime then sets the packing: molecules or atoms).
    :return: cubic periodic frame with ``info["regime"]`` and
        ``info["density"]`` (g/cm³).
    :raises MBEInputError: for an unknown regime, a bad number of atoms or a
        density that is not a finite number > 0.
    """
    if regime not in REGIMES:
        raise MBEInputError(f"--regime: '{regime}' is not one of {', '.join(REGIMES)}")
    settings = REGIMES[regime]
    if n_atoms < 2:
        raise MBEInputError(f"--atoms: {n_atoms} atoms per frame; a frame needs at least 2")
    if settings["molecular"] and n_atoms % 2:
        raise MBEInputError(
            f"--atoms: {n_atoms} is odd; the molecular (low density) regime packs H2 molecules"
        )
    if density is None:
        density = settings["density"]
    if not (np.isfinite(density) and density > 0):
        raise MBEInputError(f"--density: {density} is not a finite number > 0 (g/cm³)")
    min_distance = settings["min_distance"] * (settings["density"] / density) ** (1 / 3)
    rng = np.random.default_rng(seed)
    mass = ase.Atoms("H").get_masses()[0] * _amu * 1e3  # g per atom
    length = (n_atoms * mass / density / 1e-24) ** (1 / 3)
    cell = np.eye(3) * length
    units = n_atoms // 2 if settings["molecular"] else n_atoms
    positions: list[np.ndarray] = []
    for _ in range(2000 * units):
        if len(positions) == n_atoms:
            break
        centre = rng.uniform(0, length, 3)
        if settings["molecular"]:
            axis = rng.normal(size=3)
            axis *= 0.5 * _BOND / np.linalg.norm(axis)
            trial = [centre - axis, centre + axis]
        else:
            trial = [centre]
        if all(_far(p, positions, length, min_distance) for p in trial):
            positions.extend(trial)
    if len(positions) < n_atoms:
        raise RuntimeError(f"could not pack {n_atoms} H atoms at {density} g/cm³")
    atoms = ase.Atoms("H" * n_atoms, positions=positions, cell=cell, pbc=True)
    atoms.wrap()
    atoms.info["regime"] = regime
    atoms.info["density"] = float(density)
    return atoms


def _far(point: np.ndarray, others: list[np.ndarray], length: float, minimum: float) -> bool:
    if not others:
        return True
    delta = np.asarray(others) - point
    delta -= length * np.round(delta / length)
    return bool(np.min(np.linalg.norm(delta, axis=1)) >= minimum)
