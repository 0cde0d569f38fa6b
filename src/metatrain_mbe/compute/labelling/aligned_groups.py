"""The ``aligned-groups`` SCF strategy: Kohn-Sham DFT with one Fermi level
for a structure made of groups of atoms far apart.

With smearing and one Fermi level for the whole structure, electrons move
between groups until the groups' Fermi levels are equal, however far apart
they are: two neutral groups whose half-filled levels differ (an H3 and an H
atom 50 Å apart: -4.81 and -6.29 eV with PBE/cc-pVDZ) are not a
self-consistent solution; the one that is carries a fraction of an electron
from one group to the other (0.07 e there). That is the delocalisation error
(self-interaction error) of the functional, part of its level of theory. The
plain SCF cannot reach it: a change of the groups' charges moves their levels
by volts (about 10 eV per electron for H) while the smearing (0.025 eV)
decides the occupations, so each cycle moves whole electrons between the
groups and DIIS never settles.

This strategy solves the same equations in two nested loops:

- inner: the SCF of the whole structure with the occupations of each group's
  orbitals smeared with the group's own Fermi level and electron count n_g
  (each orbital belongs to the group that holds its Mulliken population), so
  no electron can cross between groups;
- outer: the counts n_g (summing to the structure's electrons) are moved until
  every group's Fermi level is the same (:func:`aligned_counts`, a Newton step
  with each group's hardness dμ_g/dn_g measured on the way).

At the end the occupations with one Fermi level for the whole structure are
recomputed from the orbital energies: the solution is accepted only when they
are the group occupations (to :data:`OCCUPATION_TOLERANCE`) and the orbital
gradient with them is converged, so what is kept is a solution of the
one-Fermi-level equations, not an approximation of it. It applies when every
orbital lies on one group (its largest group population above
:data:`LOCALISED`): groups far enough apart that they exchange no orbitals,
only electrons.

Cost: a few whole-structure SCFs (:data:`MAX_ALIGN_STEPS` at most), each from
the last density; for two groups of hydrogen atoms 50 Å apart, seconds.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

__all__ = [
    "ALIGN_TOLERANCE",
    "LOCALISED",
    "MAX_ALIGN_STEPS",
    "OCCUPATION_TOLERANCE",
    "aligned_groups_scf",
    "aligned_counts",
]

#: largest difference of the groups' Fermi levels accepted (Ha)
ALIGN_TOLERANCE = 1e-7
#: smallest population (of 1) of an orbital on its group
LOCALISED = 0.999
#: largest difference between the group occupations and those of one Fermi level
OCCUPATION_TOLERANCE = 1e-4
#: energy (Ha) and orbital-gradient thresholds of the inner SCFs, tighter
#: than the label's so that the groups' Fermi levels are precise to
#: :data:`ALIGN_TOLERANCE`
INNER_THRESHOLDS = (1e-12, 1e-8)
#: smallest change of a count (electrons) from which its hardness is measured
HARDNESS_STEP = 1e-5
#: outer steps (whole-structure SCFs) before giving up
MAX_ALIGN_STEPS = 30
#: hardness dμ/dn (Ha per electron) assumed for a group before it is measured
#: (about 10 eV per electron, that of small hydrogen clusters)
INITIAL_HARDNESS = 0.37


def aligned_counts(counts, levels, hardness) -> np.ndarray:
    """One Newton step of the outer loop: the electron counts of the groups
    that make their Fermi levels equal if each group's level moves linearly,
    by ``hardness`` (Ha per electron), with its count; the total is kept.

    >>> aligned_counts([3.0, 1.0], [-0.177, -0.231], [0.33, 0.46]).round(4)
    array([2.9316, 1.0684])
    """
    counts, levels, hardness = (np.asarray(x, dtype=float) for x in (counts, levels, hardness))
    common = np.sum(levels / hardness) / np.sum(1 / hardness)
    return counts - (levels - common) / hardness


def aligned_groups_scf(mf, groups, density, conv_tol: float):
    """Converge ``mf`` (a smeared RKS, or UKS with one Fermi level, of the
    whole structure) with the groups' Fermi levels aligned (see the module
    doc), from ``density``.

    :param groups: atom indices of each group.
    :param conv_tol: the SCF's energy threshold (Ha); the orbital gradient
        with one Fermi level must be below its square root.
    :returns: ``mf``, with ``converged`` True only for an accepted solution.
    """
    from pyscf.scf.smearing import _gaussian_smearing_occ, _smearing_optimize

    mol = mf.mol
    slices = mol.aoslice_by_atom()[:, 2:]
    rows = [np.concatenate([np.arange(*slices[i]) for i in group]) for group in groups]
    overlap = mol.intor_symmetric("int1e_ovlp")
    sigma = mf.sigma
    restricted = not mf.istype("UHF")
    per_orbital = 2.0 if restricted else 1.0
    state: dict[str, Any] = {"counts": None, "levels": None, "localised": True}

    def group_occupations(mo_energy, mo_coeff):
        """Occupations with each group's own Fermi level and count."""
        energies = np.ravel(mo_energy)
        coefficients = mo_coeff if restricted else np.hstack(mo_coeff)
        population = coefficients * (overlap @ coefficients)
        weights = np.array([population[r].sum(axis=0) for r in rows])
        owner = np.argmax(weights, axis=0)
        state["localised"] = bool(np.all(weights.max(axis=0) > LOCALISED))
        occupations, levels, entropy = np.zeros_like(energies), [], 0.0
        for g, count in enumerate(state["counts"]):
            mine = owner == g
            level, occ = _smearing_optimize(
                _gaussian_smearing_occ, energies[mine], count / per_orbital, sigma
            )
            occupations[mine] = occ * per_orbital
            entropy += per_orbital * mf._get_entropy(energies[mine], occ, level)
            levels.append(level)
        state["levels"] = np.array(levels)
        mf.entropy = entropy
        return occupations if restricted else occupations.reshape(2, -1)

    single = mf.get_occ
    mf.get_occ = types.MethodType(lambda self, e=None, c=None: group_occupations(e, c), mf)
    counts = np.array([float(mol.atom_charges()[g].sum()) for g in groups])
    counts += (mol.nelectron - counts.sum()) / len(groups)  # a charged structure: shared
    hardness = np.full(len(groups), INITIAL_HARDNESS)
    last = None
    mf.converged, thresholds = False, (mf.conv_tol, mf.conv_tol_grad)
    mf.conv_tol, mf.conv_tol_grad = INNER_THRESHOLDS
    for _ in range(MAX_ALIGN_STEPS):
        state["counts"] = counts
        mf.kernel(dm0=density)
        density = mf.make_rdm1()
        if not (mf.converged and state["localised"]):
            break
        levels = state["levels"]
        if np.ptp(levels) < ALIGN_TOLERANCE:
            break
        if last is not None:  # measured hardness where the count moved
            moved = np.abs(counts - last[0]) > HARDNESS_STEP
            measured = (levels - last[1])[moved] / (counts - last[0])[moved]
            hardness[moved] = np.where(measured > 0, measured, hardness[moved])
        last = (counts.copy(), levels.copy())
        counts = aligned_counts(counts, levels, hardness)
    else:
        mf.converged = False
    del mf.get_occ  # the class's: one Fermi level
    mf.conv_tol, mf.conv_tol_grad = thresholds
    accepted = mf.converged and state["localised"] and np.ptp(state["levels"]) < ALIGN_TOLERANCE
    if accepted:  # a solution of the one-Fermi-level equations?
        grouped = np.asarray(mf.mo_occ)
        entropy = mf.entropy
        occupations = single(mf.mo_energy, mf.mo_coeff)
        mf.entropy = entropy
        fock = mf.get_fock(dm=density)
        gradient = np.linalg.norm(mf.get_grad(mf.mo_coeff, occupations, fock))
        accepted = (
            np.max(np.abs(occupations - grouped)) < OCCUPATION_TOLERANCE
            and gradient < conv_tol**0.5
        )
    mf.converged = bool(accepted)
    return mf
