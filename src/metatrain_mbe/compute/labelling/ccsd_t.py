"""CCSD(T) energies with PySCF: coupled cluster with single and double
excitations and perturbative triples, on a spin-unrestricted Hartree-Fock
(UHF) reference, for correlated labels of clusters too large for FCI.

The reference is the lowest stable UHF solution found from two starting
densities (:data:`GUESSES`):

- ``default``: PySCF's guess (atomic densities; for 2S = 0, β's blocks between
  atoms removed). For atoms far apart it is no spin-broken start at all: four
  H atoms 6 Å apart then converge to nothing, their SCF stuck about 36 eV
  above four atoms;
- ``spin-broken``: :func:`spin_broken_guess`, the atoms of odd electron count
  spin-polarised, neighbours with opposite spins. Separated atoms start at
  their solution (four H atoms 6 Å apart: 4 E_1), and for the 1.4 Å H4 square
  it reaches a UHF 3.0 eV below the one the default guess leads to.

From each, the stability loop runs: after every converged SCF, PySCF's
internal stability analysis (:meth:`pyscf.scf.uhf.UHF.stability`); an unstable
solution (a lower energy along an orbital rotation) is rotated and the SCF run
again from there, up to :data:`STABILITY_ROUNDS` times. A guess whose SCF
does not converge, or that is still unstable after them, is dropped. Of the
stable solutions the lowest is kept (the ``default`` one within
:data:`SAME_ENERGY`), and UCCSD and (T) run on it. The strategy text records
the guess kept, the rotations it took and ⟨S²⟩ of the reference, e.g.
``uhf from the spin-broken guess, 0 stability rotations, <S^2> = 2.00``.

Accuracy (STO-6G, against :func:`~.fci.fci_energy`): exact for one and two
electrons (two H atoms 6 Å apart: 2 E_1; H2 at 0.74 Å), size-consistent for
separated fragments, about 1e-4 eV for H4 as two H2 units (0.74 Å bonds,
1.6 Å apart), but a single-reference method: on near-degenerate clusters,
whose UHF is strongly spin-contaminated, it misses by tenths of an eV (the
1.4 Å H4 square: +0.24 eV; an H4 chain of 1.2 Å spacings: +0.06 eV; an H6
ring of 1.3 Å sides: +0.19 eV).
Use FCI or DMRG for those. Cost: O(N^7) in the orbitals (the triples);
energies only, no analytic forces here.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CC_MAX_CYCLE",
    "GUESSES",
    "SAME_ENERGY",
    "STABILITY_ROUNDS",
    "ccsd_t_energy",
    "spin_broken_guess",
]

#: the starting densities of the UHF (see the module doc), the preferred first
GUESSES = ("default", "spin-broken")
#: most orbital rotations of the stability loop, for each guess
STABILITY_ROUNDS = 8
#: most CCSD iterations
CC_MAX_CYCLE = 200
#: UHF energies closer than this (Ha) are one solution
SAME_ENERGY = 1e-8


def ccsd_t_energy(mol, conv_tol: float = 1e-9, max_cycle: int = 100) -> tuple[float, str]:
    """The UCCSD(T) energy (Ha, nuclear repulsion included) of a PySCF
    molecule with ``mol.spin`` = 2S, on the lowest stable UHF (see the module
    doc), and the strategy text.

    :param conv_tol: energy threshold (Ha) of the SCF and of CCSD.
    :param max_cycle: SCF iterations of each run of the stability loop.
    :raises RuntimeError: one line, when no guess gives a stable UHF or CCSD
        does not converge.
    """
    from pyscf import cc

    found, failures = [], []
    for guess in GUESSES:
        dm0 = spin_broken_guess(mol) if guess == "spin-broken" else None
        mf, rotations, problem = _stable_uhf(mol, dm0, conv_tol, max_cycle)
        if problem:
            failures.append(f"{guess} guess: {problem}")
        else:
            found.append((float(mf.e_tot), guess, rotations, mf))
    if not found:
        raise RuntimeError("no stable UHF reference (" + "; ".join(failures) + ")")
    lowest = min(energy for energy, *_ in found)
    _, guess, rotations, mf = next(f for f in found if f[0] < lowest + SAME_ENERGY)
    strategy = (
        f"uhf from the {guess} guess, {rotations} stability rotation"
        f"{'' if rotations == 1 else 's'}, <S^2> = {mf.spin_square()[0]:.2f}"
    )
    if mol.nelectron < 2:  # no electron pairs to correlate: the UHF is exact
        return float(mf.e_tot), strategy
    solver = cc.UCCSD(mf)
    solver.verbose = 0
    solver.conv_tol = conv_tol
    solver.max_cycle = CC_MAX_CYCLE
    solver.kernel()
    if not solver.converged:
        raise RuntimeError(f"UCCSD not converged in {CC_MAX_CYCLE} iterations ({strategy})")
    return float(solver.e_tot + solver.ccsd_t()), strategy


def _stable_uhf(mol, dm0, conv_tol: float, max_cycle: int):
    """The stability loop from the density ``dm0`` (None: PySCF's guess):
    ``(scf object, rotations, problem)``, ``problem`` an empty text when the
    last solution converged and is stable."""
    from pyscf import scf

    mf = scf.UHF(mol)
    mf.verbose = 0
    mf.conv_tol = conv_tol
    mf.max_cycle = max_cycle
    mf.kernel(dm0=dm0)
    alpha, beta = mol.nelec
    # no occupied-virtual pair: nothing to rotate (the H atom in a minimal basis)
    rotatable = alpha * (mol.nao - alpha) + beta * (mol.nao - beta) > 0
    for rotations in range(STABILITY_ROUNDS + 1):
        if not mf.converged:
            return mf, rotations, f"SCF not converged after {rotations} rotations"
        if not rotatable:
            return mf, rotations, ""
        orbitals, _, stable, _ = mf.stability(return_status=True)
        if stable:
            return mf, rotations, ""
        if rotations < STABILITY_ROUNDS:
            mf.kernel(dm0=mf.make_rdm1(orbitals, mf.mo_occ))
    return mf, STABILITY_ROUNDS, f"still unstable after {STABILITY_ROUNDS} rotations"


def spin_broken_guess(mol) -> np.ndarray:
    """α and β densities (shape ``(2, nao, nao)``) to start a UHF from:
    PySCF's superposition of atomic densities, shared equally between α and
    β, except on the atoms of odd electron count, whose block holds one
    electron more of one spin than of the other. The first such atom is α;
    then, nearest first, each takes the spin opposite to its nearest atom
    already given one, while atoms of that spin remain for 2S = ``mol.spin``.

    >>> from pyscf import gto
    >>> h4 = gto.M(atom=[("H", (0, 0, 1.5 * k)) for k in range(4)], basis="sto-3g")
    >>> guess = spin_broken_guess(h4)
    >>> np.round(np.diagonal(guess[0] - guess[1]), 6).tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    from pyscf import scf

    density = scf.hf.init_guess_by_atom(mol)
    charges = mol.atom_charges()
    odd = np.flatnonzero(charges % 2)
    ups = min(len(odd), max(0, (len(odd) + mol.spin) // 2))
    left = {1: ups, -1: len(odd) - ups}
    distances = np.linalg.norm(
        mol.atom_coords()[odd, None, :] - mol.atom_coords()[None, odd, :], axis=-1
    )
    signs = np.zeros(len(odd), dtype=int)
    for step in range(len(odd)):
        if step == 0:
            atom, sign = 0, 1
        else:  # the closest pair of an atom without a spin and one with it
            pairs = distances[signs == 0][:, signs != 0]
            row, column = np.unravel_index(np.argmin(pairs), pairs.shape)
            atom = int(np.flatnonzero(signs == 0)[row])
            sign = -int(signs[np.flatnonzero(signs != 0)[column]])
        sign = sign if left[sign] > 0 else -sign
        signs[atom] = sign
        left[sign] -= 1
    alpha, beta = density / 2, density / 2
    slices = mol.aoslice_by_atom()[:, 2:]
    for index, polarised in zip(odd, signs):
        start, stop = slices[index]
        block = density[start:stop, start:stop]
        electrons = charges[index]
        alpha[start:stop, start:stop] = block * (electrons + polarised) / (2 * electrons)
        beta[start:stop, start:stop] = block * (electrons - polarised) / (2 * electrons)
    return np.array([alpha, beta])
