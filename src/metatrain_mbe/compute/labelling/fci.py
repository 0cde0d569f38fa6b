"""Full configuration interaction (FCI) energies with PySCF: the exact
electronic energy in a basis set, for the correlated reference of small
hydrogen clusters (the paper's Fig. 1 and 7 use DMRG in STO-6G, which FCI
reproduces exactly).

The Hamiltonian is built in the orbitals of an RHF (ROHF for odd electron
counts) calculation; the FCI energy does not depend on which orthonormal
orbitals span the basis, so the SCF need not converge. The state kept is the
lowest of the structure's spin 2S (:func:`~.pyscf_calculator.spin_of` after
the charge), found in one of two ways:

- ``exact``: up to :data:`EXACT_DETERMINANTS` determinants, the whole
  Hamiltonian matrix is diagonalised and the lowest eigenvector whose
  ⟨S²⟩ is S(S+1) is kept. An iterative solver started from a guess can
  converge to another state when states are degenerate or nearly so, as for
  fragments far apart (PySCF's default Davidson solver put an H8 of two
  squares 50 Å apart 1.7 eV too high);
- ``davidson``: above it, up to :data:`MAX_DETERMINANTS`, PySCF's Davidson
  solver with :data:`DAVIDSON_ROOTS` roots and a penalty holding ⟨S²⟩ at
  S(S+1); the lowest root of the right spin is kept.

Larger determinant spaces are refused. H8 in STO-6G has 4 900 determinants;
in cc-pVDZ (40 orbitals) about 6 × 10^9, out of reach (DMRG's domain).
Energies only: FCI here has no analytic forces.
"""

from __future__ import annotations

from math import comb

import numpy as np

__all__ = [
    "DAVIDSON_ROOTS",
    "EXACT_DETERMINANTS",
    "EXACT_ROOTS",
    "MAX_DETERMINANTS",
    "fci_energy",
]

#: largest determinant space diagonalised whole (a dense matrix of about 300 MB)
EXACT_DETERMINANTS = 6_000
#: largest determinant space accepted (Davidson vectors of a few GB)
MAX_DETERMINANTS = 50_000_000
#: lowest eigenpairs of the whole Hamiltonian computed first (then twice as many)
EXACT_ROOTS = 16
#: roots of the Davidson solver, of which the lowest of the right spin is kept
DAVIDSON_ROOTS = 4
#: largest |⟨S²⟩ - S(S+1)| of a state of spin S
SPIN_TOLERANCE = 1e-6
#: eigenvalues closer than this (Ha) are one degenerate level
DEGENERACY = 1e-8


def fci_energy(mol) -> tuple[float, str]:
    """The FCI energy (Ha, nuclear repulsion included) of a PySCF molecule in
    the state of lowest energy with spin ``mol.spin`` / 2, and the solver
    that found it (``exact`` or ``davidson``).

    :raises ValueError: for a determinant space above :data:`MAX_DETERMINANTS`,
        or when no state of the right spin is found.
    """
    from pyscf import ao2mo, scf

    norb, nelec = mol.nao_nr(), mol.nelec
    determinants = comb(norb, nelec[0]) * comb(norb, nelec[1])
    if determinants > MAX_DETERMINANTS:
        raise ValueError(
            f"FCI of {mol.nelectron} electrons in {norb} orbitals: {determinants:.3g} "
            f"determinants, above {MAX_DETERMINANTS:.3g} (use a smaller basis, or DMRG)"
        )
    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.verbose = 0
    mf.kernel()
    orbitals = mf.mo_coeff
    h1 = orbitals.T @ mf.get_hcore() @ orbitals
    eri = ao2mo.kernel(mol, orbitals)
    spin = mol.spin / 2
    if determinants <= EXACT_DETERMINANTS:
        energy, solver = _exact(h1, eri, norb, nelec, spin), "exact"
    else:
        energy, solver = _davidson(h1, eri, norb, nelec, spin), "davidson"
    return energy + mol.energy_nuc(), solver


def _exact(h1, eri, norb: int, nelec: tuple[int, int], spin: float) -> float:
    """The lowest eigenvalue of the whole Hamiltonian with a state of spin
    ``spin``. Degenerate eigenvalues (fragments far apart: a singlet and a
    triplet of the same energy) come as arbitrary mixtures of spins, so ⟨S²⟩
    is diagonalised within each degenerate group."""
    from pyscf.fci import cistring, direct_spin1
    from scipy.linalg import eigh

    shape = (cistring.num_strings(norb, nelec[0]), cistring.num_strings(norb, nelec[1]))
    size = shape[0] * shape[1]
    addresses, hamiltonian = direct_spin1.pspace(h1, eri, norb, nelec, np=size)
    count = min(EXACT_ROOTS, size)
    while True:  # the lowest states first, more until a group has the right spin
        values, vectors = eigh(hamiltonian, subset_by_index=[0, count - 1])
        states = np.zeros((size, count))
        states[addresses] = vectors
        for group in _degenerate_groups(values, complete=count == size):
            spins = _spins(states[:, group], shape, norb, nelec)
            if np.any(np.abs(spins - spin * (spin + 1)) < SPIN_TOLERANCE):
                return float(values[group[0]])
        if count == size:
            raise ValueError(f"FCI: no state of spin S = {spin:g}")
        count = min(2 * count, size)


def _degenerate_groups(values, complete: bool) -> list[list[int]]:
    """Indices of ascending ``values`` in groups equal within
    :data:`DEGENERACY`; the last group is left out unless ``complete`` (more
    values may belong to it)."""
    groups: list[list[int]] = []
    for index, value in enumerate(values):
        if groups and value - values[groups[-1][0]] < DEGENERACY:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups if complete else groups[:-1]


def _spins(states, shape, norb: int, nelec: tuple[int, int]):
    """The eigenvalues of S² in the space of ``states`` (columns, orthonormal)."""
    from pyscf.fci import spin_op

    applied = np.column_stack(
        [spin_op.contract_ss(state.reshape(shape), norb, nelec).ravel() for state in states.T]
    )
    return np.linalg.eigvalsh(states.T @ applied)


def _davidson(h1, eri, norb: int, nelec: tuple[int, int], spin: float) -> float:
    """The lowest Davidson root of spin ``spin`` (a penalty on ⟨S²⟩)."""
    from pyscf import fci

    solver = fci.addons.fix_spin_(fci.direct_spin1.FCI(), ss=spin * (spin + 1))
    solver.nroots = DAVIDSON_ROOTS
    solver.conv_tol = 1e-10
    energies, vectors = solver.kernel(h1, eri, norb, nelec)
    for energy, vector in sorted(zip(energies, vectors), key=lambda pair: pair[0]):
        if abs(solver.spin_square(vector, norb, nelec)[0] - spin * (spin + 1)) < 1e-4:
            return float(energy)
    raise ValueError(f"FCI: no Davidson root of spin S = {spin:g}")
