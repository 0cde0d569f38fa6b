"""An ase calculator running spin-unrestricted Kohn-Sham DFT with PySCF.

Defaults follow the paper (section II B): PBE, Gaussian smearing of 0.025 eV,
cc-pVDZ, and the lowest spin multiplicity of the electron count (singlet for
an even number of electrons, doublet for odd). Energies in eV, forces in eV/Å.

Smearing and spin: by default (PySCF's) α and β electrons are smeared with one
Fermi level, so 2S is the starting point of the SCF but not held: the isolated
H atom comes out spin-unpolarised (half an α and half a β electron,
E_1 = -12.437 eV with PBE/cc-pVDZ), like a spin-restricted calculation such as
the paper's FHI-aims runs. ``fix_spin=True`` keeps separate α and β Fermi
levels and holds 2S (the H atom is then a doublet, E_1 = -13.568 eV).

Compressed hydrogen is metallic and small fragments are often nearly
degenerate, so the SCF can fail. :data:`STRATEGIES` lists what is tried, in
order; every strategy solves the same equations (same functional, basis,
smearing, grid and spin), only the solver or its starting point changes:

1. ``diis`` — PySCF's default DIIS from the superposition of atomic densities;
2. ``damped`` — DIIS with damping (0.5) and a level shift (0.2 Ha), more cycles;
3. ``huckel-guess`` — DIIS from an extended-Hückel guess;
4. ``newton`` — the second-order (Newton) solver from the best previous
   density. PySCF's Newton solver cannot rotate orbitals with fractional
   (smeared) occupations, so with smearing it converges integer occupations
   first and the smeared DIIS SCF then starts from that density, with its α
   and β parts averaged (see "spin branch" below);
5. ``smearing-schedule`` — smearing annealing: DIIS at a wide smearing
   (0.03 Ha), then narrower and narrower (geometric steps, smaller ones where
   a step fails), each from the last converged density, down to the requested
   width, whose SCF is the result. Near-degenerate levels at the Fermi level (three H atoms
   almost equidistant) make the occupations of a narrow smearing jump from one
   cycle to the next; a wide smearing converges, and each narrower step starts
   close to its solution.

The first strategy that converges with finite gradients is kept when it is the
first of the list (``diis``, as for most structures). When it fails, every
fallback is tried and the converged solution of lowest free energy
(E - σS, the quantity the smeared SCF minimises) is kept: fallbacks can land
in different self-consistent solutions, and the lowest is the one a better
solver would find. :attr:`PySCFCalculator.solutions` lists the free energy of
each converged strategy.

Spin branch: with one Fermi level for α and β (the default), a density whose α
and β parts are equal stays so, and the SCF reaches a spin-unpolarised
solution (the H atom at -12.437 eV); started spin-polarised, it can reach a
polarised one (the H atom at -13.568 eV with the same functional, basis and
smearing). PySCF's default guess is unpolarised for 2S > 0 (odd electron
counts) and slightly spin-broken for 2S = 0, so odd counts are labelled on
the unpolarised branch. The ``newton`` strategy averages α and β of its
integer-occupation start when 2S > 0 so that it stays on that branch too
(before, it landed on the polarised branch for odd counts, about 1 eV lower
per unpaired electron); the other strategies start from PySCF's guesses or
from a wide smearing. The lowest-energy choice is thus made, for odd counts,
among unpolarised solutions; for even counts, among whatever the strategies
reach from PySCF's spin-broken guess, as the default DIIS does.

When all fail, :class:`SCFError` names the strategies and the label run records
the structure as failed.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, Hartree

__all__ = ["PySCFCalculator", "SCFError", "STRATEGIES", "spin_of"]

STRATEGIES = ("diis", "damped", "huckel-guess", "newton", "smearing-schedule")

#: ``smearing-schedule``: the smearing width (Ha) where it starts, the ratio of
#: two successive widths, and the most SCF runs it may take
SCHEDULE_START = 0.03
SCHEDULE_RATIO = 0.8
SCHEDULE_MAX_SCF = 60


class SCFError(RuntimeError):
    """The SCF did not converge (or gave NaN gradients) with any strategy."""


def spin_of(numbers) -> int:
    """2S of the lowest spin state: 0 for an even electron count, else 1.

    >>> spin_of([1, 1]), spin_of([1, 1, 1])
    (0, 1)
    """
    return int(np.sum(numbers)) % 2


class PySCFCalculator(Calculator):
    """UKS DFT with PySCF (energies in eV, forces in eV/Å).

    :param xc: exchange-correlation functional.
    :param basis: Gaussian basis set.
    :param smearing: Gaussian smearing width in eV (0 for none).
    :param spin: 2S; default :func:`spin_of` the electron count.
    :param charge: total charge.
    :param grid_level: PySCF DFT integration grid level (0-9; PySCF's default
        is 3; 2 changes hydrogen cluster energies by ~1e-6 Ha at half the cost).
    :param conv_tol: SCF energy convergence threshold (Ha).
    :param max_cycle: SCF iterations per strategy.
    :param fix_spin: with smearing, hold 2S fixed (separate α and β Fermi
        levels) instead of smearing both with one Fermi level (see module doc).
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(
        self,
        xc: str = "pbe",
        basis: str = "cc-pvdz",
        smearing: float = 0.025,
        spin: int | None = None,
        charge: int = 0,
        grid_level: int = 3,
        conv_tol: float = 1e-9,
        max_cycle: int = 100,
        fix_spin: bool = False,
    ):
        super().__init__()
        self.settings = dict(
            xc=xc,
            basis=basis,
            smearing=smearing,
            spin=spin,
            charge=charge,
            grid_level=grid_level,
            conv_tol=conv_tol,
            max_cycle=max_cycle,
            fix_spin=fix_spin,
        )
        #: name of the strategy whose solution the last calculation kept
        self.strategy: str | None = None
        #: free energy (eV) of every strategy that converged in the last
        #: calculation (several only when the first strategy failed)
        self.solutions: dict[str, float] = {}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run the SCF (trying :data:`STRATEGIES`) and its nuclear gradients."""
        super().calculate(atoms, properties, system_changes)
        from pyscf import gto

        s = self.settings
        numbers = self.atoms.numbers
        mol = gto.M(
            atom=[(int(z), tuple(p)) for z, p in zip(numbers, self.atoms.positions)],
            unit="Angstrom",
            basis=s["basis"],
            charge=s["charge"],
            spin=spin_of(numbers) if s["spin"] is None else s["spin"],
            verbose=0,
        )
        strategies = STRATEGIES  # read at call time (tests narrow it)
        failures, found = [], {}
        self.state = {"density": None}
        self.solutions = {}
        for index, strategy in enumerate(strategies):
            try:
                mf, energy = self._run(mol, strategy)
                if not mf.converged:
                    failures.append(f"{strategy}: not converged")
                    continue
                gradient = mf.nuc_grad_method().kernel()
            except Exception as error:  # PySCF raises plain errors on numerical trouble
                failures.append(f"{strategy}: {type(error).__name__}")
                continue
            if not (np.isfinite(energy) and np.all(np.isfinite(gradient))):
                failures.append(f"{strategy}: non-finite result")
                continue
            free = getattr(mf, "e_free", None)
            free = energy if free is None else free
            found[strategy] = (float(free), float(energy), np.asarray(gradient))
            self.solutions[strategy] = float(free) * Hartree
            if index == 0:  # the default converged: keep it, as for most structures
                break
        if not found:
            raise SCFError("SCF failed with every strategy (" + "; ".join(failures) + ")")
        self.strategy = min(found, key=lambda name: found[name][0])
        _, energy, gradient = found[self.strategy]
        self.results["energy"] = self.results["free_energy"] = energy * Hartree
        self.results["forces"] = -gradient * Hartree / Bohr

    def _run(self, mol, strategy: str):
        """Run one strategy: ``(scf object, energy in Ha)``. ``self.state``
        carries the last density from one strategy to the next."""
        s = self.settings
        smeared = s["smearing"] > 0
        density = self.state["density"]
        if strategy == "newton" and smeared:
            start = self._solver(mol, "newton", smearing=False)
            start.kernel(dm0=density)
            density = start.make_rdm1()
            if mol.spin != 0 and not s["fix_spin"]:  # the default's branch (module doc)
                density = np.array([density[0] + density[1]] * 2) / 2
        elif strategy == "smearing-schedule" and smeared:
            return self._anneal(mol)
        elif strategy not in ("newton", "smearing-schedule"):
            density = None  # the other strategies start from their own guess
        mf = self._solver(mol, strategy)
        energy = mf.kernel(dm0=density)
        self.state["density"] = mf.make_rdm1()
        return mf, energy

    def _anneal(self, mol):
        """``smearing-schedule``: DIIS from :data:`SCHEDULE_START` down to the
        requested smearing in geometric steps (ratio :data:`SCHEDULE_RATIO`),
        each from the last converged density; a step that fails is retried
        from there with a smaller step (the ratio's square root), up to
        :data:`SCHEDULE_MAX_SCF` SCF runs. The last step is an SCF at the
        requested smearing with the settings' thresholds."""
        s = self.settings
        target = s["smearing"] / Hartree
        sigma, density, ratio = max(SCHEDULE_START, target), None, SCHEDULE_RATIO
        mf = energy = None
        for _ in range(SCHEDULE_MAX_SCF):
            final = sigma <= target * (1 + 1e-9)
            mf = self._solver(mol, "diis", sigma=target if final else sigma)
            mf.diis_space = 16
            # PySCF's extra cycle after convergence (one undamped diagonalisation)
            # throws a near-degenerate smeared SCF off its solution: the DIIS
            # thresholds (conv_tol on the energy, its square root on the
            # orbital gradient) decide, as in the loop of every strategy
            mf.conv_check = False
            if not final:
                mf.conv_tol, mf.max_cycle = max(s["conv_tol"], 1e-7), 50
            energy = mf.kernel(dm0=density)
            if final and mf.converged:
                break
            if mf.converged:  # go on from here
                density, last = mf.make_rdm1(), sigma
            elif density is None or ratio > 0.99:
                break  # the widest smearing fails, or the steps are too small
            else:  # back to the last converged width, smaller step
                ratio, sigma = ratio**0.5, last
            sigma = max(sigma * ratio, target)
        else:  # out of SCF runs: whatever converged last is not the requested smearing
            mf.converged = mf.converged and final
        self.state["density"] = mf.make_rdm1()
        return mf, energy

    def _solver(self, mol, strategy: str, smearing: bool = True, sigma: float | None = None):
        """The SCF object of ``strategy``; the ``newton`` strategy gets the
        second-order solver only without smearing (see the module doc).

        :param sigma: smearing width in Ha instead of the settings' one.
        """
        from pyscf import dft
        from pyscf.scf import addons

        s = self.settings
        smearing = smearing and s["smearing"] > 0
        mf = dft.UKS(mol)
        mf.xc = s["xc"]
        mf.grids.level = s["grid_level"]
        mf.conv_tol = s["conv_tol"]
        mf.max_cycle = s["max_cycle"]
        if strategy == "damped":
            mf.damp = 0.5
            mf.level_shift = 0.2
            mf.max_cycle = 2 * s["max_cycle"]
        elif strategy == "huckel-guess":
            mf.init_guess = "huckel"
        if smearing:
            return addons.smearing(
                mf,
                sigma=s["smearing"] / Hartree if sigma is None else sigma,
                method="gaussian",
                fix_spin=s["fix_spin"],
            )
        return mf.newton() if strategy == "newton" else mf
