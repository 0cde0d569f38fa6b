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
order, until the SCF converges with finite gradients; every strategy solves
the same equations (same functional, basis, smearing and spin), only the
solver or its starting point changes:

1. ``diis`` — PySCF's default DIIS from the superposition of atomic densities;
2. ``damped`` — DIIS with damping (0.5) and a level shift (0.2 Ha), more cycles;
3. ``huckel-guess`` — DIIS from an extended-Hückel guess;
4. ``newton`` — the second-order (Newton) solver from the best previous
   density. PySCF's Newton solver cannot rotate orbitals with fractional
   (smeared) occupations, so with smearing it converges integer occupations
   first and the smeared DIIS SCF then starts from that density: the final
   SCF is the same smeared one as in the other strategies.

When all fail, :class:`SCFError` names the strategies and the label run records
the structure as failed.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, Hartree

__all__ = ["PySCFCalculator", "SCFError", "STRATEGIES", "spin_of"]

STRATEGIES = ("diis", "damped", "huckel-guess", "newton")


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
        **kwargs,
    ):
        super().__init__(**kwargs)
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
        #: name of the strategy that converged in the last calculation
        self.strategy: str | None = None

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
        failures = []
        density = None
        for strategy in STRATEGIES:
            mf = self._solver(mol, strategy)
            try:
                if strategy == "newton" and self.settings["smearing"] > 0:
                    start = self._solver(mol, "newton", smearing=False)
                    start.kernel(dm0=density)
                    density = start.make_rdm1()
                energy = mf.kernel(dm0=density if strategy == "newton" else None)
                density = mf.make_rdm1()
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
            self.strategy = strategy
            self.results["energy"] = self.results["free_energy"] = float(energy) * Hartree
            self.results["forces"] = -np.asarray(gradient) * Hartree / Bohr
            return
        raise SCFError("SCF failed with every strategy (" + "; ".join(failures) + ")")

    def _solver(self, mol, strategy: str, smearing: bool = True):
        """The SCF object of ``strategy``; the ``newton`` strategy gets the
        second-order solver only without smearing (see the module doc)."""
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
                mf, sigma=s["smearing"] / Hartree, method="gaussian", fix_spin=s["fix_spin"]
            )
        return mf.newton() if strategy == "newton" else mf
