"""An ase calculator running Kohn-Sham DFT with PySCF, on one spin branch, or
a correlated method for energies alone.

Defaults follow the paper (section II B): PBE, Gaussian smearing of 0.025 eV,
cc-pVDZ, spin-restricted. Energies in eV, forces in eV/Å.

Methods (:data:`METHODS`, ``method``), in the basis ``basis``, for the
structure's charge and spin (below):

- ``dft`` (default) — Kohn-Sham DFT with ``xc``, smearing, grid and spin
  treatment (the rest of this doc): energies and forces;
- ``fci`` — full configuration interaction (:mod:`.fci`): the exact energy in
  the basis, the lowest state of spin S; up to 5e7 determinants (H8 in
  STO-6G: 4 900, 15 s);
- ``ccsd(t)`` — UCCSD(T) on the lowest stable UHF (:mod:`.ccsd_t`: two
  starting guesses, a stability loop): O(N^7), for clusters beyond FCI;
  exact for two electrons and size-consistent, but single-reference: tenths
  of an eV from FCI on near-degenerate clusters (the 1.4 Å H4 square:
  +0.24 eV), 1e-4 eV on two H2 units;
- ``dmrg`` — DMRG with block2 (:mod:`.dmrg`, optional: ``pip install
  block2``), spin-adapted, final bond dimension ``bond_dim`` and at most
  ``sweeps`` sweeps: FCI's energy once M is large enough (H8 in STO-6G at
  M = 250, 3 s), a variational upper bound below.

The correlated methods give energies only (the report then gives Ṽ^(m), not
their gradients), use ``conv_tol`` and ``max_cycle`` for their SCF (the UHF of
``ccsd(t)``) and ignore ``xc``, ``smearing``, ``grid_level`` and
``spin_treatment``, which stay in the level of theory as given. ``bond_dim``
and ``sweeps`` belong to the level of theory of ``dmrg`` alone, ``scratch``
(where DMRG writes) to none (:meth:`PySCFCalculator.theory_settings`).

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

Charge and spin (:meth:`PySCFCalculator.state_of`): a structure's own, by
ase's and fairchem's conventions (:func:`~.executor.stated_state`:
``info["charge"]``, else the sum of ``initial_charges``; ``info["spin"]``, the
multiplicity 2S + 1, else the sum of ``initial_magmoms``, 2S), else the
calculator's ``charge`` (total charge, e) and ``spin`` (2S; default the lowest
of the electrons left by the charge, :func:`spin_of`: an H2+ has 2S = 1).

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
   then ``aligned-groups``, for the same structures: the groups' Fermi
   levels aligned by moving fractions of electrons between groups
   (:mod:`.aligned_groups`). With one Fermi level, groups whose half-filled
   levels differ (an H3 and an H atom 50 Å apart) exchange charge however far
   apart they are, and the plain SCF moves whole electrons between them at
   every cycle. Either, converged, is kept without the fallbacks;
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
first of the list (``diis``, as for most structures; :data:`GROUP_STRATEGIES`
for separated groups). When they fail, every
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

from ...data.io import STATE_KEYS, describe
from ...errors import MBEInputError
from .aligned_groups import aligned_groups_scf
from .ccsd_t import ccsd_t_energy
from .dmrg import BOND_DIM, SWEEPS, check_options, dmrg_energy, require_block2
from .executor import stated_state
from .fci import fci_energy

__all__ = [
    "GROUP_GAP",
    "GROUP_STRATEGIES",
    "METHODS",
    "METHOD_SETTINGS",
    "PySCFCalculator",
    "RUN_SETTINGS",
    "SCFError",
    "SPIN_TREATMENTS",
    "STRATEGIES",
    "default_state",
    "electronic_state",
    "separated_groups",
    "spin_of",
]

#: the electronic-structure method: Kohn-Sham DFT (``xc``, smearing, spin
#: treatment), or, energies only, full configuration interaction (:mod:`.fci`),
#: UCCSD(T) (:mod:`.ccsd_t`) or DMRG (:mod:`.dmrg`; ``xc``, ``smearing``,
#: ``spin_treatment`` and ``grid_level`` unused by these three)
METHODS = ("dft", "fci", "ccsd(t)", "dmrg")

#: settings of one method alone: part of its level of theory only
METHOD_SETTINGS = {"dmrg": ("bond_dim", "sweeps")}

#: settings of where a calculation runs, part of no level of theory
RUN_SETTINGS = ("scratch",)

#: how the α and β densities are treated (see the module doc); the first is the default
SPIN_TREATMENTS = ("restricted", "unrestricted", "fixed")

STRATEGIES = ("diis", "damped", "huckel-guess", "newton", "smearing-schedule")
#: the first strategies of a structure whose atoms fall into groups far apart
#: (:func:`separated_groups`), in place of plain ``diis``
GROUP_STRATEGIES = ("fragment-guess", "aligned-groups")

#: atoms closer than this (Å) are in one group for ``fragment-guess``
GROUP_GAP = 3.0

#: ``smearing-schedule``: the smearing width (Ha) where it starts, the ratio of
#: two successive widths, and the most SCF runs it may take
SCHEDULE_START = 0.03
SCHEDULE_RATIO = 0.8
SCHEDULE_MAX_SCF = 60


class SCFError(RuntimeError):
    """The SCF did not converge (or gave NaN gradients) with any strategy."""


def spin_of(numbers, charge: int = 0) -> int:
    """2S of the lowest spin state of the electrons that the total ``charge``
    (e) leaves: 0 for an even count, else 1.

    >>> spin_of([1, 1]), spin_of([1, 1, 1]), spin_of([1, 1], charge=1)
    (0, 1, 1)
    """
    return (int(np.sum(numbers)) - charge) % 2


def default_state(numbers, charge: int = 0, spin: int | None = None) -> tuple[int, int]:
    """``(charge in e, 2S)`` of a structure that states neither: the
    calculator's charge and spin, 2S the lowest (:func:`spin_of`) without one.

    >>> default_state([1, 1], charge=1)
    (1, 1)
    """
    return charge, spin_of(numbers, charge) if spin is None else spin


def electronic_state(atoms, charge: int = 0, spin: int | None = None) -> tuple[int, int]:
    """``(charge in e, 2S)`` to compute ``atoms`` with: what the structure
    states (:func:`~.executor.stated_state`), else the
    calculator's ``charge`` and ``spin`` (:func:`default_state`).

    >>> import ase
    >>> atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    >>> atoms.info["charge"] = 1
    >>> electronic_state(atoms)
    (1, 1)

    :raises MBEInputError: for what :func:`stated_state` refuses, and for a
        stated value that differs from a calculator's charge other than 0 or
        its given spin (which one applies would be a guess).
    """
    stated_charge, stated_spin = stated_state(atoms)
    for what, stated, own in (("charge", stated_charge, charge or None), ("2S", stated_spin, spin)):
        if stated is not None and own is not None and stated != own:
            raise MBEInputError(
                f"{describe(atoms)}: the structure states {what} {stated}, the calculator's "
                f"keywords {what} {own}; give one, or make them agree"
            )
    return default_state(
        atoms.numbers,
        charge if stated_charge is None else stated_charge,
        spin if stated_spin is None else stated_spin,
    )


class PySCFCalculator(Calculator):
    """Kohn-Sham DFT with PySCF (energies in eV, forces in eV/Å).

    :param xc: exchange-correlation functional.
    :param basis: Gaussian basis set.
    :param smearing: Gaussian smearing width in eV (0 for none).
    :param spin: 2S of structures that state none (see :meth:`state_of`);
        default the lowest, :func:`spin_of` the electrons the charge leaves.
    :param charge: total charge (e) of structures that state none.
    :param grid_level: PySCF DFT integration grid level (0-9; PySCF's default
        is 3; 2 changes hydrogen cluster energies by ~1e-6 Ha at half the cost).
    :param conv_tol: SCF energy convergence threshold (Ha).
    :param max_cycle: SCF iterations per strategy.
    :param spin_treatment: ``restricted`` (α = β, RKS), ``unrestricted``
        (UKS, one Fermi level) or ``fixed`` (UKS holding 2S); see the module doc.
    :param method: ``dft``, ``fci``, ``ccsd(t)`` or ``dmrg`` (:data:`METHODS`;
        all but ``dft`` give energies only).
    :param bond_dim: ``dmrg``: the final bond dimension M.
    :param sweeps: ``dmrg``: the most sweeps (at least
        :data:`~.dmrg.MIN_SWEEPS`).
    :param scratch: ``dmrg``: the folder of its scratch folders (None: the
        system's temporary folder).
    :raises ValueError: one line, for a setting out of its range.
    :raises MBEInputError: for ``dmrg`` without block2.
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
        method: str = METHODS[0],
        bond_dim: int = BOND_DIM,
        sweeps: int = SWEEPS,
        scratch: str | None = None,
    ):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if spin_treatment not in SPIN_TREATMENTS:
            raise ValueError(
                f"spin_treatment must be one of {', '.join(SPIN_TREATMENTS)}, got "
                f"{spin_treatment!r}"
            )
        if method == "dmrg":
            require_block2()
            check_options(bond_dim, sweeps, scratch)
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
            method=method,
            bond_dim=bond_dim,
            sweeps=sweeps,
            scratch=scratch,
        )
        if method != "dft":  # energies only
            self.implemented_properties = ["energy", "free_energy"]
        #: name of the strategy whose solution the last calculation kept
        self.strategy: str | None = None
        #: free energy (eV) of every strategy that converged in the last
        #: calculation (several only when the first strategy failed)
        self.solutions: dict[str, float] = {}

    @staticmethod
    def theory_settings(settings: dict) -> dict:
        """The settings that give the level of theory: without
        :data:`RUN_SETTINGS`, and without the :data:`METHOD_SETTINGS` of a
        method other than ``settings["method"]``, so the labels of ``dft``
        and ``fci`` keep the keys they had before DMRG's settings existed.

        >>> PySCFCalculator.theory_settings({"method": "fci", "bond_dim": 250, "scratch": None})
        {'method': 'fci'}
        """
        unused = set(RUN_SETTINGS)
        for method, names in METHOD_SETTINGS.items():
            if method != settings.get("method", METHODS[0]):
                unused.update(names)
        return {k: v for k, v in settings.items() if k not in unused}

    def default_state(self, numbers) -> tuple[int, int]:
        """``(charge in e, 2S)`` of a structure that states neither: the
        settings' (:func:`default_state`)."""
        return default_state(numbers, self.settings["charge"], self.settings["spin"])

    def state_of(self, atoms) -> tuple[int, int]:
        """``(charge in e, 2S)`` of ``atoms`` here: :func:`electronic_state`
        with the settings' charge and spin. A structure that states a charge
        or spin of its own is checked (:meth:`check_electrons`), and a 2S it
        states must be the lowest with ``restricted`` (α = β holds no spin);
        a settings' charge or spin that does not fit a structure fails it in
        :meth:`calculate` alone (a per-structure error of the label run).

        :raises MBEInputError: one line naming the structure.
        """
        s = self.settings
        charge, spin = electronic_state(atoms, s["charge"], s["spin"])
        stated_charge, stated_spin = stated_state(atoms)
        if stated_charge is None and stated_spin is None:
            return charge, spin
        try:
            self.check_electrons(atoms.numbers, charge, spin)
        except ValueError as error:
            raise MBEInputError(f"{describe(atoms)}: {error}") from error
        lowest = spin_of(atoms.numbers, charge)
        if stated_spin is not None and s["spin_treatment"] == "restricted" and spin != lowest:
            raise MBEInputError(
                f"{describe(atoms)}: states 2S = {spin}, which --spin restricted (α = β, "
                f"2S = {lowest}) does not hold; use --spin fixed (or unrestricted, which "
                "starts from it)"
            )
        return charge, spin

    def check_electrons(self, numbers, charge: int, spin: int) -> None:
        """Refuse a state this calculator cannot compute: a negative electron
        count, 2S above it or of the other parity, and an odd count with
        ``restricted`` and no smearing.

        :raises ValueError: one line, with the fields that give the state.
        """
        s = self.settings
        electrons = int(np.sum(numbers)) - charge
        if electrons < 0 or spin > electrons or (electrons - spin) % 2:
            problem = f"{electrons} electrons (charge {charge}) cannot have 2S = {spin}"
        elif s["spin_treatment"] == "restricted" and electrons % 2 and s["smearing"] <= 0:
            problem = (
                f"restricted spin with {electrons} electrons needs smearing > 0 "
                "(one electron shared by α and β)"
            )
        else:
            return
        raise ValueError(
            f"{problem} (info 'charge' is the total charge, 'spin' the multiplicity 2S + 1; "
            "initial_charges sum to the charge, initial_magmoms to 2S)"
        )

    def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
        """The changes of ``atoms`` since the last calculation that ase finds,
        and a change of ``info["charge"]`` or ``info["spin"]`` (ase compares no
        ``info``)."""
        changes = super().check_state(atoms, tol)
        if self.atoms is not None and [self.atoms.info.get(k) for k in STATE_KEYS] != [
            atoms.info.get(k) for k in STATE_KEYS
        ]:
            changes.append("info")
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        """Run the SCF (trying :data:`STRATEGIES`) and its nuclear gradients,
        or the correlated method of the settings, with the structure's charge
        and spin (:meth:`state_of`)."""
        super().calculate(atoms, properties, system_changes)
        charge, spin = self.state_of(self.atoms)
        if self.settings["method"] != "dft":
            self.check_electrons(self.atoms.numbers, charge, spin)
            mol = self._molecule(self.atoms.numbers, self.atoms.positions, charge, spin)
            energy, self.strategy = self._correlated(mol)
            self.results["energy"] = self.results["free_energy"] = energy * Hartree
            return
        self.strategy, energy, gradient, _ = self._solve(
            self.atoms.numbers, self.atoms.positions, charge, spin, gradients=True
        )
        self.results["energy"] = self.results["free_energy"] = energy * Hartree
        self.results["forces"] = -gradient * Hartree / Bohr

    def _correlated(self, mol) -> tuple[float, str]:
        """``(energy in Ha, strategy text)`` of the correlated method of the settings."""
        s = self.settings
        if s["method"] == "fci":
            return fci_energy(mol)
        if s["method"] == "ccsd(t)":
            return ccsd_t_energy(mol, s["conv_tol"], s["max_cycle"])
        return dmrg_energy(mol, s["bond_dim"], s["sweeps"], s["scratch"])

    def _solve(self, numbers, positions, charge: int, spin: int, gradients: bool):
        """``(strategy, energy in Ha, gradient in Ha/Bohr or None, density)`` of
        the solution kept (see the module doc) for the total ``charge`` (e)
        and ``spin`` (2S), which :meth:`check_electrons` checks first; fills
        :attr:`solutions`."""
        self.check_electrons(numbers, charge, spin)
        mol = self._molecule(numbers, positions, charge, spin)
        groups = separated_groups(positions)
        guess = len(groups) > 1 and self._guess_by_groups(mol, numbers)
        # read at call time (tests narrow it)
        first = GROUP_STRATEGIES if guess else STRATEGIES[:1]  # kept at once when converged
        strategies = first + tuple(name for name in STRATEGIES if name not in first)
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
            if index < len(first):  # a first strategy converged: keep it, as for most structures
                break
        if not found:
            raise SCFError("SCF failed with every strategy (" + "; ".join(failures) + ")")
        kept = min(found, key=lambda name: found[name][0])
        _, energy, gradient, density = found[kept]
        return kept, energy, gradient if gradients else None, density

    def _molecule(self, numbers, positions, charge: int, spin: int):
        """The PySCF molecule of the structure, with the settings' basis, the
        total ``charge`` (e) and ``spin`` (2S)."""
        from pyscf import gto

        return gto.M(
            atom=[(int(z), tuple(p)) for z, p in zip(numbers, positions)],
            unit="Angstrom",
            basis=self.settings["basis"],
            charge=charge,
            spin=spin,
            verbose=0,
        )

    def _guess_by_groups(self, mol, numbers) -> bool:
        """Whether ``fragment-guess`` applies: a neutral structure with the
        lowest spin and no spin in the settings, not ``fixed`` (whose 2S the
        groups' densities would not add up to)."""
        s = self.settings
        lowest = mol.charge == 0 and mol.spin == spin_of(numbers)
        return lowest and s["spin"] is None and s["spin_treatment"] != "fixed"

    def _run(self, mol, strategy: str):
        """Run one strategy: ``(scf object, energy in Ha)``. ``self.state``
        carries the last density from one strategy to the next."""
        s = self.settings
        smeared = s["smearing"] > 0
        density = self.state["density"]
        if strategy in GROUP_STRATEGIES:
            if self.state.get("superposed") is None:
                self.state["superposed"] = self._superposed_density(mol)
            density = self.state["superposed"]
            if strategy == "aligned-groups":
                mf = aligned_groups_scf(
                    self._solver(mol, "diis"), self.state["groups"], density, s["conv_tol"]
                )
                self.state["density"] = mf.make_rdm1()
                return mf, mf.e_tot
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
            *_, block = part._solve(
                numbers[group], positions[group], 0, spin_of(numbers[group]), gradients=False
            )
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
