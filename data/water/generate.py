"""Water clusters (H2O)_n, n = 4, 5, 6, from rigid TIP3P molecular dynamics.

  python generate.py OUT.xyz [--per-size N] [--first-id I] [--seed S]

For each size n, TRAJECTORIES independent trajectories (own seed and
temperature, evenly from 200 to 300 K) of a flexible TIP3P water model: ase's
TIP3P between molecules (charges and Lennard-Jones of TIP3P) plus harmonic
O-H bonds and H-O-H angles with the force constants of SPC/Fw (Wu, Tepper and
Voth, J. Chem. Phys. 124, 024503, 2006) around TIP3P's geometry (0.9572 Å,
104.52°). n waters are placed at random (O-O at least 2.7 Å apart, in a
sphere) and relaxed (FIRE) to the nearest minimum, a hydrogen-bonded cluster,
then run with Langevin dynamics (0.5 fs steps, friction 0.01 / fs). After
EQUILIBRATION steps (2 ps) a snapshot is taken every SPACING steps (0.5 ps).
A snapshot whose waters do not form one hydrogen-bonded cluster (O-O graph
with edges below 3.5 Å) is dropped, and the trajectory restarts from its
relaxed minimum with new velocities (a water that evaporated does not come
back). Each kept snapshot then gets small random intramolecular distortions
on top of the thermal ones, so that a model sees flexible monomers: each O-H
length changes by a uniform ±0.03 Å and the H-O-H angle by a uniform ±5°
(the O atom, the bisector and the molecular plane kept).

Atoms are ordered O, H, H per water; ``arrays["mbe_fragment"]`` numbers the
waters 0 .. n-1 (one body of the many-body expansion per water). Parents get
``mbe_parent`` ids in blocks of N per size (n = 4 first), and ``n_water``,
``temperature`` (K) and ``trajectory`` in ``info``. Same seeds, same file.
"""

import argparse

import ase
import ase.io
import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.tip3p import TIP3P, angleHOH, rOH
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.optimize import FIRE

SIZES = (4, 5, 6)
TRAJECTORIES = 5  # per size; temperatures evenly from 200 to 300 K
EQUILIBRATION = 4000  # steps (2 ps)
SPACING = 1000  # steps (0.5 ps) between snapshots
HBOND_OO = 3.5  # Å: O-O distance of a hydrogen bond (connectivity check)
STRETCH = 0.03  # Å: O-H distortion, uniform ±
BEND = 5.0  # degrees: H-O-H distortion, uniform ±
K_BOND = 1059.162 * units.kcal / units.mol  # eV/Å², SPC/Fw (Wu et al. 2006)
K_ANGLE = 75.90 * units.kcal / units.mol  # eV/rad², SPC/Fw
TIMESTEP = 0.5  # fs


def water(rng: np.random.Generator, centre: np.ndarray) -> np.ndarray:
    """Positions (O, H, H) of a TIP3P water at ``centre``, randomly oriented."""
    half = np.radians(angleHOH) / 2
    local = rOH * np.array(
        [[0, 0, 0], [np.sin(half), 0, np.cos(half)], [-np.sin(half), 0, np.cos(half)]]
    )
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return local @ rotation.T + centre


def connected(atoms: ase.Atoms) -> bool:
    """Whether the waters form one cluster (O-O graph, edges below HBOND_OO)."""
    oxygens = atoms.positions[::3]
    near = np.linalg.norm(oxygens[:, None] - oxygens[None], axis=-1) < HBOND_OO
    seen, todo = {0}, [0]
    while todo:
        for j in np.flatnonzero(near[todo.pop()]):
            if j not in seen:
                seen.add(int(j))
                todo.append(int(j))
    return len(seen) == len(oxygens)


class FlexibleTIP3P(Calculator):
    """ase's TIP3P between waters plus harmonic O-H bonds and H-O-H angles
    (force constants of SPC/Fw, equilibrium at TIP3P's geometry)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Energy (eV) and forces (eV/Å) of the waters (atoms O, H, H each)."""
        super().calculate(atoms, properties, system_changes)
        tip3p = TIP3P(rc=20.0)  # no cutoff inside a cluster
        energy = tip3p.get_potential_energy(self.atoms)
        forces = tip3p.get_forces(self.atoms).copy()
        r = self.atoms.positions.reshape(-1, 3, 3)
        u1, u2 = r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]
        l1, l2 = np.linalg.norm(u1, axis=1), np.linalg.norm(u2, axis=1)
        energy += 0.5 * K_BOND * (((l1 - rOH) ** 2).sum() + ((l2 - rOH) ** 2).sum())
        f = forces.reshape(-1, 3, 3)
        g1 = (K_BOND * (l1 - rOH) / l1)[:, None] * u1
        g2 = (K_BOND * (l2 - rOH) / l2)[:, None] * u2
        cos = (u1 * u2).sum(1) / (l1 * l2)
        theta = np.arccos(np.clip(cos, -1, 1))
        energy += 0.5 * K_ANGLE * ((theta - np.radians(angleHOH)) ** 2).sum()
        factor = (K_ANGLE * (theta - np.radians(angleHOH)) / -np.sin(theta))[:, None]
        d1 = factor * (u2 / (l1 * l2)[:, None] - cos[:, None] * u1 / (l1**2)[:, None])
        d2 = factor * (u1 / (l1 * l2)[:, None] - cos[:, None] * u2 / (l2**2)[:, None])
        g1, g2 = g1 + d1, g2 + d2
        f[:, 1] -= g1
        f[:, 2] -= g2
        f[:, 0] += g1 + g2
        self.results["energy"] = energy
        self.results["forces"] = f.reshape(-1, 3)


def minimum(n: int, rng: np.random.Generator) -> ase.Atoms:
    """A relaxed, hydrogen-bonded flexible TIP3P cluster of ``n`` waters."""
    while True:
        radius = 1.6 * n ** (1 / 3)
        centres = []
        while len(centres) < n:
            c = rng.uniform(-radius, radius, 3)
            if np.linalg.norm(c) <= radius and all(np.linalg.norm(c - o) >= 2.7 for o in centres):
                centres.append(c)
        positions = np.concatenate([water(rng, c) for c in centres])
        atoms = ase.Atoms("OH2" * n, positions=positions)
        atoms.calc = FlexibleTIP3P()
        FIRE(atoms, logfile=None).run(fmax=0.01, steps=3000)
        if connected(atoms):
            return atoms


def distort(atoms: ase.Atoms, rng: np.random.Generator) -> ase.Atoms:
    """A copy with each O-H stretched by ±STRETCH and H-O-H bent by ±BEND
    (uniform), the O, the bisector and the plane of each water kept."""
    positions = atoms.positions.copy()
    for i in range(0, len(atoms), 3):
        o, h1, h2 = positions[i : i + 3]
        u1, u2 = h1 - o, h2 - o
        u1, u2 = u1 / np.linalg.norm(u1), u2 / np.linalg.norm(u2)
        bisector = (u1 + u2) / np.linalg.norm(u1 + u2)
        side = u1 - (u1 @ bisector) * bisector
        side /= np.linalg.norm(side)
        half = np.arccos(np.clip(u1 @ u2, -1, 1)) / 2 + np.radians(rng.uniform(-BEND, BEND)) / 2
        lengths = np.linalg.norm([h1 - o, h2 - o], axis=1) + rng.uniform(-STRETCH, STRETCH, 2)
        positions[i + 1] = o + lengths[0] * (np.cos(half) * bisector + np.sin(half) * side)
        positions[i + 2] = o + lengths[1] * (np.cos(half) * bisector - np.sin(half) * side)
    out = ase.Atoms(atoms.numbers, positions=positions - positions.mean(axis=0))
    out.arrays["mbe_fragment"] = np.repeat(np.arange(len(atoms) // 3), 3)
    return out


def trajectory(n: int, count: int, temperature: float, seed: int) -> list[ase.Atoms]:
    """``count`` distorted snapshots of one Langevin run of ``n`` waters."""
    rng = np.random.default_rng(seed)
    start = minimum(n, rng)
    frames = []
    while len(frames) < count:
        atoms = start.copy()
        atoms.calc = FlexibleTIP3P()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        Stationary(atoms)
        ZeroRotation(atoms)
        md = Langevin(
            atoms,
            TIMESTEP * units.fs,
            temperature_K=temperature,
            friction=0.01 / units.fs,
            fixcm=False,
            rng=rng,
        )
        md.run(EQUILIBRATION)
        while len(frames) < count:
            md.run(SPACING)
            if not connected(atoms):
                break  # evaporated: restart from the minimum
            frames.append(distort(atoms, rng))
    return frames


def main():
    """Write the clusters of every size (see the module doc)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output")
    parser.add_argument("--per-size", type=int, default=100, help="parents per size")
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    temperatures = np.linspace(200.0, 300.0, TRAJECTORIES)
    frames, pid = [], args.first_id
    for s, n in enumerate(SIZES):
        counts = np.full(TRAJECTORIES, args.per_size // TRAJECTORIES)
        counts[: args.per_size % TRAJECTORIES] += 1
        for t, (count, temperature) in enumerate(zip(counts, temperatures)):
            seed = args.seed + 100 * s + t
            for atoms in trajectory(n, int(count), float(temperature), seed):
                atoms.info.update(
                    mbe_parent=pid,
                    n_water=n,
                    temperature=float(temperature),
                    trajectory=f"{n}-{t}",
                )
                frames.append(atoms)
                pid += 1
    ase.io.write(args.output, frames, format="extxyz")
    print(f"{args.output}: {len(frames)} water clusters")


if __name__ == "__main__":
    main()
