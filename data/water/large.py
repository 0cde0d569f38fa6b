"""A periodic box of flexible TIP3P water, to cut large water clusters from.

  python data/water/large.py bulk OUT.xyz [--molecules 343] [--steps 600] [--seed 0]
  python data/water/large.py order IN.xyz OUT.xyz

``bulk``: MOLECULES waters (a cube: 7^3 = 343 by default) on a simple cubic
grid in a cubic box at DENSITY (1 g/cm³), each randomly oriented and shifted
by up to ±JITTER Å, relaxed (FIRE, RELAX steps) and run with Langevin
dynamics at 300 K (0.5 fs steps, friction 0.02 / fs) for STEPS steps (600:
300 fs): enough to disorder the grid into a hydrogen-bonded, liquid-like
frame (first O-O peak at 2.75 Å), not an equilibrated liquid. The model is
the flexible TIP3P of ``generate.py`` here (ase's TIP3P between waters,
SPC/Fw's harmonic O-H bonds and H-O-H angles) with periodic boundaries:
ase's TIP3P by the minimum image of the O-O vector, within RC Å (switched off
over the last 1 Å, on the O-O distance), vectorised over pairs of waters
(:func:`tip3p`, equal to ase's loop to 1e-12 eV). Writes one extended XYZ
frame with its cell and pbc (atoms O, H, H per water, each water whole,
unwrapped), ``mbe_fragment`` and ``info`` ``temperature`` (K), ``steps``,
``density`` (g/cm³) and ``kinetic_temperature`` (K, of the last step). The
same seed gives the same frame (about 25 s of one core's time; 1-2 minutes
on a shared one).

``order``: the atoms of each water of IN.xyz as O, H, H (``mtt-mbe sample
--protocol sphere`` lists each molecule's atoms by their distance to the
centre atom; ase's TIP3P needs O, H, H), ``mbe_fragment`` and every info key
kept, and ``info["n_water"]`` the cluster's number of waters (as in the
clusters of ``data/water``).
"""

import argparse
import sys
import time
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.tip3p import angleHOH, epsilon0, qH, rOH, sigma0
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.optimize import FIRE

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate  # noqa: E402  (generate.py of this folder)

DENSITY = 1.0  # g/cm³
TEMPERATURE = 300.0  # K
RC = 7.0  # Å: the TIP3P cutoff on the O-O distance (at most half the box)
JITTER = 0.2  # Å: random shift of each grid water
RELAX = 200  # FIRE steps before the dynamics
FRICTION = 0.02  # 1 / fs


def intramolecular(positions: np.ndarray) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of the harmonic O-H bonds and H-O-H
    angles of ``generate.FlexibleTIP3P`` (waters O, H, H, each whole)."""
    r = positions.reshape(-1, 3, 3)
    u1, u2 = r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]
    l1, l2 = np.linalg.norm(u1, axis=1), np.linalg.norm(u2, axis=1)
    energy = 0.5 * generate.K_BOND * (((l1 - rOH) ** 2).sum() + ((l2 - rOH) ** 2).sum())
    g1 = (generate.K_BOND * (l1 - rOH) / l1)[:, None] * u1
    g2 = (generate.K_BOND * (l2 - rOH) / l2)[:, None] * u2
    cos = (u1 * u2).sum(1) / (l1 * l2)
    theta = np.arccos(np.clip(cos, -1, 1))
    energy += 0.5 * generate.K_ANGLE * ((theta - np.radians(angleHOH)) ** 2).sum()
    factor = (generate.K_ANGLE * (theta - np.radians(angleHOH)) / -np.sin(theta))[:, None]
    d1 = factor * (u2 / (l1 * l2)[:, None] - cos[:, None] * u1 / (l1**2)[:, None])
    d2 = factor * (u1 / (l1 * l2)[:, None] - cos[:, None] * u2 / (l2**2)[:, None])
    g1, g2 = g1 + d1, g2 + d2
    f = np.zeros_like(r)
    f[:, 1] -= g1
    f[:, 2] -= g2
    f[:, 0] += g1 + g2
    return float(energy), f.reshape(-1, 3)


def tip3p(atoms: ase.Atoms, rc: float = RC, width: float = 1.0) -> tuple[float, np.ndarray]:
    """The TIP3P of ``ase.calculators.tip3p.TIP3P(rc, width)`` (the same
    charges, Lennard-Jones, O-O minimum image and switching), in a periodic
    orthorhombic box, vectorised over the pairs of waters within ``rc``
    instead of ase's loop over waters: energy (eV) and forces (eV/Å)."""
    r = atoms.positions.reshape(-1, 3, 3)
    length = atoms.cell.diagonal()
    oxygens = r[:, 0]
    first, second = np.triu_indices(len(r), 1)
    doo = oxygens[second] - oxygens[first]
    shift = (doo + length / 2) % length - length / 2 - doo
    doo += shift
    d2 = (doo**2).sum(1)
    near = d2 < rc**2
    first, second, doo, shift, d2 = first[near], second[near], doo[near], shift[near], d2[near]
    d = np.sqrt(d2)
    y = np.clip((d - rc + width) / width, 0.0, 1.0)
    t = 1.0 - y**2 * (3.0 - 2.0 * y)  # switching on the O-O distance
    dtdd = -6.0 / width * y * (1.0 - y)
    c6 = (sigma0**2 / d2) ** 3
    c12 = c6**2
    e_lj = 4 * epsilon0 * (c12 - c6)
    energy = float(t @ e_lj)
    forces = np.zeros_like(r)
    f_oo = (24 * epsilon0 * (2 * c12 - c6) / d2 * t - e_lj * dtdd / d)[:, None] * doo
    charges = np.array([-2 * qH, qH, qH])
    # site j of the first water, site k of the second: (pairs, j, k, xyz)
    v = r[second][:, None, :, :] - r[first][:, :, None, :] + shift[:, None, None, :]
    dist2 = (v**2).sum(-1)
    e = np.outer(charges, charges)[None] / np.sqrt(dist2) * units.Hartree * units.Bohr
    energy += float((t[:, None, None] * e).sum())
    f = (e / dist2 * t[:, None, None])[..., None] * v  # on site k of the second water
    f_oo -= (e.sum((1, 2)) * dtdd / d)[:, None] * doo
    on_second = f.sum(1)
    on_second[:, 0] += f_oo
    on_first = -f.sum(2)
    on_first[:, 0] -= f_oo
    n = len(r)
    for site in range(3):
        for xyz in range(3):
            forces[:, site, xyz] += np.bincount(second, on_second[:, site, xyz], minlength=n)
            forces[:, site, xyz] += np.bincount(first, on_first[:, site, xyz], minlength=n)
    return energy, forces.reshape(-1, 3)


class PeriodicFlexibleTIP3P(Calculator):
    """``generate.FlexibleTIP3P`` in a periodic orthorhombic box: :func:`tip3p`
    (ase's TIP3P with cutoff RC, minimum image) plus the intramolecular terms."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Energy (eV) and forces (eV/Å) of the waters (atoms O, H, H each)."""
        super().calculate(atoms, properties, system_changes)
        energy, forces = tip3p(self.atoms)
        e, f = intramolecular(self.atoms.positions)
        self.results["energy"] = energy + e
        self.results["forces"] = forces + f


def bulk(molecules: int, steps: int, seed: int) -> ase.Atoms:
    """The periodic frame of the module doc."""
    rng = np.random.default_rng(seed)
    side = round(molecules ** (1 / 3))
    if side**3 != molecules:
        raise SystemExit(f"--molecules: {molecules} is not a cube (e.g. 216, 343, 512)")
    mass = ase.Atoms("OH2").get_masses().sum()  # amu
    length = (molecules * mass / (units.mol * DENSITY) * 1e24) ** (1 / 3)  # Å
    if length < 2 * RC:
        raise SystemExit(f"--molecules: a box of {length:.1f} Å is smaller than 2 x {RC} Å")
    spacing = length / side
    grid = (np.indices((side,) * 3).reshape(3, -1).T + 0.5) * spacing
    centres = grid + rng.uniform(-JITTER, JITTER, grid.shape)
    positions = np.concatenate([generate.water(rng, c) for c in centres])
    atoms = ase.Atoms("OH2" * molecules, positions=positions, cell=[length] * 3, pbc=True)
    atoms.calc = PeriodicFlexibleTIP3P()
    FIRE(atoms, logfile=None).run(fmax=0.05, steps=RELAX)
    thermalize_momenta(atoms, temperature_K=TEMPERATURE, rng=rng)
    Stationary(atoms)
    md = Langevin(
        atoms,
        generate.TIMESTEP * units.fs,
        temperature_K=TEMPERATURE,
        friction=FRICTION / units.fs,
        fixcm=False,
        rng=rng,
    )
    md.run(steps)
    out = ase.Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
    out.arrays["mbe_fragment"] = np.repeat(np.arange(molecules), 3)
    out.info.update(
        temperature=TEMPERATURE,
        steps=steps,
        density=DENSITY,
        kinetic_temperature=float(atoms.get_temperature()),
    )
    return out


def order(atoms: ase.Atoms) -> ase.Atoms:
    """A copy of ``atoms`` (with ``mbe_fragment``) with the atoms of each water
    as O, H, H, the waters in the order of ``mbe_fragment``."""
    fragment = atoms.arrays["mbe_fragment"]
    index = []
    for k in range(int(fragment.max()) + 1):
        mine = np.flatnonzero(fragment == k)
        symbols = [atoms[i].symbol for i in mine]
        if sorted(symbols) != ["H", "H", "O"]:
            raise SystemExit(f"molecule {k} is {''.join(symbols)}, not a water")
        index.extend(sorted(mine, key=lambda i: (atoms[i].symbol != "O", i)))
    out = atoms[index]
    out.info = dict(atoms.info)
    out.info["n_water"] = int(fragment.max()) + 1
    return out


def main():
    """See the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("bulk", help="a periodic box of flexible TIP3P water")
    make.add_argument("output")
    make.add_argument("--molecules", type=int, default=343, help="a cube (default: 343)")
    make.add_argument("--steps", type=int, default=600, help="Langevin steps of 0.5 fs")
    make.add_argument("--seed", type=int, default=0)
    reorder = commands.add_parser("order", help="atoms O, H, H within each water")
    reorder.add_argument("input")
    reorder.add_argument("output")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.command == "bulk":
        atoms = bulk(args.molecules, args.steps, args.seed)
        ase.io.write(args.output, atoms, format="extxyz")
        length = atoms.cell[0, 0]
        print(
            f"{args.output}: {args.molecules} waters in a {length:.3f} Å box, "
            f"{atoms.info['kinetic_temperature']:.0f} K at the end "
            f"({time.perf_counter() - start:.0f} s)"
        )
    else:
        frames = [order(atoms) for atoms in ase.io.read(args.input, ":")]
        ase.io.write(args.output, frames, format="extxyz")
        print(f"{args.output}: {len(frames)} clusters, atoms O, H, H per water")


if __name__ == "__main__":
    main()
