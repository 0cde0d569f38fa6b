"""An ase calculator running Kohn-Sham DFT with PySCF, on one spin branch.

Defaults follow the paper (section II B): PBE, Gaussian smearing of 0.025 eV,
cc-pVDZ, spin-restricted. Energies in eV, forces in eV/Å.

Spin treatment (:data:`SPIN_TREATMENTS`, ``spin_treatment``):

- ``restricted`` (default) — restricted Kohn-Sham (RKS): α and β densities are
  equal in every SCF, for odd electron counts too (smearing then occupies the
  highest level with one electron, half α and half β; odd counts need
  smearing > 0). Every structure, the isolated atom included, is on the same
  spin-unpolarised branch, as in the paper's FHI-aims runs (whose default is
  ``spin none``). The H atom: E_1 = -12.437 eV with PBE/cc-pVDZ. With it the
  terms of the many-body expansion hold body-order physics only: two H atoms
  far apart have V^(2) = 0.
- ``unrestricted`` — UKS, α and β smeared with one Fermi level, so 2S is the
  starting point of the SCF but not held. From PySCF's slightly spin-broken
  guess for even electron counts, sub-clusters can converge to spin-polarised
  solutions while the isolated atom (odd) stays unpolarised: the expansion
  then mixes spin-state jumps between orders into V^(m) (up to about 1 eV per
  term for hydrogen clusters). Kept for comparison with labels made so.
- ``fixed`` — UKS with separate α and β Fermi levels holding 2S (``spin``):
  the H atom is a doublet, E_1 = -13.568 eV. Separated fragments then carry
  2S = 0 between them, which can put them in ion-pair or high-energy states.

``spin`` (2S) is the lowest of the electron count (:func:`spin_of`) unless
given; ``charge`` is the total charge.

Compressed hydrogen is metallic and small fragments are often nearly
degenerate, so the SCF can fail. :data:`STRATEGIES` lists what is tried, in
order; every strategy solves the same equations (same functional, basis,
smearing, grid and spin treatment), only the solver or its starting point
changes:

0. ``fragment-guess`` — first, for a neutral structure of the lowest spin
   whose atoms fall into groups more than :data:`GROUP_GAP` apart
   (:func:`separated_groups`; not with ``fixed``): DIIS from the
   superposition of the groups' own converged densities, each group solved
   with the same settings. From PySCF's guess, levels of separated groups
   that are degenerate get the electrons unequally (an H3 of atoms 6 Å apart
   lands 11 eV above three atoms); from the groups' densities the SCF starts
   at the solution when the groups are far apart, and near it otherwise;
1. ``diis`` — PySCF's default DIIS from the superposition of atomic densities;
2. ``damped`` — DIIS with damping (0.5) and a level shift (0.2 Ha), more cycles;
3. ``huckel-guess`` — DIIS from an extended-Hückel guess;
4. ``newton`` — the second-order (Newton) solver from the best previous
   density. PySCF's Newton solver cannot rotate orbitals with fractional
   (smeared) occupations, so with smearing it converges integer occupations
   (UKS) first and the smeared DIIS SCF then starts from that density, with
   its α and β parts averaged when the treatment is not ``fixed`` (summed
   into one density for ``restricted``; see "spin branch" below);
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

Spin branch (``unrestricted``): with one Fermi level for α and β, a density
whose α and β parts are equal stays so, and the SCF reaches a
spin-unpolarised solution (the H atom at -12.437 eV); started spin-polarised,
it can reach a polarised one (the H atom at -13.568 eV with the same
functional, basis and smearing). PySCF's default guess is unpolarised for
2S > 0 (odd electron counts) and slightly spin-broken for 2S = 0, so odd
counts are labelled on the unpolarised branch, even counts on whatever branch
the SCF reaches. ``restricted`` has one branch only.

When all fail, :class:`SCFError` names the strategies and the label run records
the structure as failed.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Bohr, Hartree

__all__ = [
    "GROUP_GAP",
    "PySCFCalculator",
    "SCFError",
    "SPIN_TREATMENTS",
    "STRATEGIES",
    "separated_groups",
    "spin_of",
]

#: how the α and β densities are treated (see the module doc); the first is the default
SPIN_TREATMENTS = ("restricted", "unrestricted", "fixed")

STRATEGIES = ("diis", "damped", "huckel-guess", "newton", "smearing-schedule")

#: atoms closer than this (Å) are in one group for ``fragment-guess``
GROUP_GAP = 3.0

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
    """Kohn-Sham DFT with PySCF (energies in eV, forces in eV/Å).

    :param xc: exchange-correlation functional.
    :param basis: Gaussian basis set.
    :param smearing: Gaussian smearing width in eV (0 for none).
    :param spin: 2S; default :func:`spin_of` the electron count.
    :param charge: total charge.
    :param grid_level: PySCF DFT integration grid level (0-9; PySCF's default
        is 3; 2 changes hydrogen cluster energies by ~1e-6 Ha at half the cost).
    :param conv_tol: SCF energy convergence threshold (Ha).
    :param max_cycle: SCF iterations per strategy.
    :param spin_treatment: ``restricted`` (α = β, RKS), ``unrestricted``
        (UKS, one Fermi level) or ``fixed`` (UKS holding 2S); see the module doc.
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
        spin_treatment: str = SPIN_TREATMENTS[0],
    ):
        super().__init__()
        if spin_treatment not in SPIN_TREATMENTS:
            raise ValueError(
                f"spin_treatment must be one of {', '.join(SPIN_TREATMENTS)}, got "
                f"{spin_treatment!r}"
            )
        self.settings = dict(
            xc=xc,
            basis=basis,
            smearing=smearing,
            spin=spin,
            charge=charge,
            grid_level=grid_level,
            conv_tol=conv_tol,
            max_cycle=max_cycle,
            spin_treatment=spin_treatment,
        )
        #: name of the strategy whose solution the last calculation kept
        self.strategy: str | None = None
        #: free energy (eV) of every strategy that converged in the last
        #: calculation (several only when the first strategy failed)
        self.solutions: dict[str, float] = {}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run the SCF (trying :data:`STRATEGIES`) and its nuclear gradients."""
        super().calculate(atoms, properties, system_changes)
        self.strategy, energy, gradient, _ = self._solve(
            self.atoms.numbers, self.atoms.positions, gradients=True
        )
        self.results["energy"] = self.results["free_energy"] = energy * Hartree
        self.results["forces"] = -gradient * Hartree / Bohr

    def _solve(self, numbers, positions, gradients: bool):
        """``(strategy, energy in Ha, gradient in Ha/Bohr or None, density)`` of
        the solution kept (see the module doc); fills :attr:`solutions`."""
        mol = self._molecule(numbers, positions)
        groups = separated_groups(positions)
        guess = len(groups) > 1 and self._guess_by_groups(mol)
        # read at call time (tests narrow it)
        strategies = (("fragment-guess",) if guess else ()) + STRATEGIES
        failures, found = [], {}
        self.state = {"density": None, "groups": groups, "numbers": numbers, "positions": positions}
        self.solutions = {}
        for index, strategy in enumerate(strategies):
            try:
                mf, energy = self._run(mol, strategy)
                if not mf.converged:
                    failures.append(f"{strategy}: not converged")
                    continue
                gradient = mf.nuc_grad_method().kernel() if gradients else np.zeros(1)
            except Exception as error:  # PySCF raises plain errors on numerical trouble
                failures.append(f"{strategy}: {type(error).__name__}")
                continue
            if not (np.isfinite(energy) and np.all(np.isfinite(gradient))):
                failures.append(f"{strategy}: non-finite result")
                continue
            free = getattr(mf, "e_free", None)
            free = energy if free is None else free
            found[strategy] = (float(free), float(energy), np.asarray(gradient), mf.make_rdm1())
            self.solutions[strategy] = float(free) * Hartree
            if index == 0:  # the first strategy converged: keep it, as for most structures
                break
        if not found:
            raise SCFError("SCF failed with every strategy (" + "; ".join(failures) + ")")
        kept = min(found, key=lambda name: found[name][0])
        _, energy, gradient, density = found[kept]
        return kept, energy, gradient if gradients else None, density

    def _molecule(self, numbers, positions):
        """The PySCF molecule of the structure, with the settings' basis,
        charge and spin."""
        from pyscf import gto

        s = self.settings
        mol = gto.M(
            atom=[(int(z), tuple(p)) for z, p in zip(numbers, positions)],
            unit="Angstrom",
            basis=s["basis"],
            charge=s["charge"],
            spin=spin_of(numbers) if s["spin"] is None else s["spin"],
            verbose=0,
        )
        if s["spin_treatment"] == "restricted" and mol.nelectron % 2 and s["smearing"] <= 0:
            raise ValueError(
                f"restricted spin with {mol.nelectron} electrons needs smearing > 0 "
                "(one electron shared by α and β)"
            )
        return mol

    def _guess_by_groups(self, mol) -> bool:
        """Whether ``fragment-guess`` applies: a neutral structure with the
        lowest spin, not ``fixed`` (whose 2S the groups' densities would not
        add up to)."""
        s = self.settings
        return mol.charge == 0 and s["spin"] is None and s["spin_treatment"] != "fixed"

    def _run(self, mol, strategy: str):
        """Run one strategy: ``(scf object, energy in Ha)``. ``self.state``
        carries the last density from one strategy to the next."""
        s = self.settings
        smeared = s["smearing"] > 0
        density = self.state["density"]
        if strategy == "fragment-guess":
            density = self._superposed_density(mol)
            strategy = "diis"
        elif strategy == "newton" and smeared:
            start = self._solver(mol, "newton", smearing=False, unrestricted=True)
            start.kernel(dm0=_unrestricted(density))
            alpha, beta = start.make_rdm1()
            if s["spin_treatment"] == "restricted":
                density = alpha + beta
            elif mol.spin != 0 and s["spin_treatment"] == "unrestricted":  # its branch
                density = np.array([alpha + beta] * 2) / 2
            else:
                density = np.array([alpha, beta])
        elif strategy == "smearing-schedule" and smeared:
            return self._anneal(mol)
        elif strategy not in ("newton", "smearing-schedule"):
            density = None  # the other strategies start from their own guess
        mf = self._solver(mol, strategy)
        energy = mf.kernel(dm0=density)
        self.state["density"] = mf.make_rdm1()
        return mf, energy

    def _superposed_density(self, mol):
        """``fragment-guess``: the block-diagonal sum of the converged
        densities of the structure's groups (:func:`separated_groups`), each
        solved on its own with the same settings."""
        groups = self.state["groups"]
        numbers, positions = self.state["numbers"], self.state["positions"]
        slices = mol.aoslice_by_atom()[:, 2:]
        restricted = self.settings["spin_treatment"] == "restricted"
        shape = (mol.nao, mol.nao) if restricted else (2, mol.nao, mol.nao)
        density = np.zeros(shape)
        for group in groups:
            part = PySCFCalculator(**self.settings)
            *_, block = part._solve(numbers[group], positions[group], gradients=False)
            rows = np.concatenate([np.arange(*slices[i]) for i in group])
            density[..., rows[:, None], rows[None, :]] = block
        return density

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

    def _solver(
        self,
        mol,
        strategy: str,
        smearing: bool = True,
        sigma: float | None = None,
        unrestricted: bool = False,
    ):
        """The SCF object of ``strategy``; the ``newton`` strategy gets the
        second-order solver only without smearing (see the module doc).

        :param sigma: smearing width in Ha instead of the settings' one.
        :param unrestricted: UKS whatever the spin treatment (the integer
            start of ``newton``).
        """
        from pyscf import dft
        from pyscf.scf import addons

        s = self.settings
        smearing = smearing and s["smearing"] > 0
        restricted = s["spin_treatment"] == "restricted" and not unrestricted
        # dft.rks.RKS, not dft.RKS: the latter turns into ROKS for 2S > 0
        mf = dft.rks.RKS(mol) if restricted else dft.UKS(mol)
        # levels of separated groups are degenerate, and PySCF's extra
        # diagonalisation after convergence throws such an SCF off its solution:
        # the DIIS thresholds (conv_tol on the energy, its square root on the
        # orbital gradient) decide
        mf.conv_check = False
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
                fix_spin=s["spin_treatment"] == "fixed",
            )
        return mf.newton() if strategy == "newton" else mf


def separated_groups(positions, gap: float = GROUP_GAP) -> list[np.ndarray]:
    """The atoms of a structure in groups: connected components of the atoms
    closer than ``gap`` (Å), each ascending, ordered by their first atom.

    >>> [g.tolist() for g in separated_groups([[0, 0, 0], [0, 0, 1], [0, 0, 9]])]
    [[0, 1], [2]]
    """
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import pdist, squareform

    positions = np.asarray(positions, dtype=float)
    if len(positions) < 2:
        return [np.arange(len(positions))]
    close = squareform(pdist(positions)) < gap
    count, labels = connected_components(close, directed=False)
    return [np.flatnonzero(labels == k) for k in range(count)]


def _unrestricted(density):
    """An α, β density pair from a restricted (total) one; others unchanged."""
    if density is None or np.ndim(density) == 3:
        return density
    return np.array([density, density]) / 2
