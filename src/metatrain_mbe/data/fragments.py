"""Molecules as bodies: assign the ``mbe_fragment`` array of parents from bonding.

Two atoms i and j are bonded when their distance (Å) is at most the bond
cutoff ``mult * (r_i + r_j)`` shrunk by :data:`BOND_TOLERANCE`, where ``r``
are ase's covalent radii (:data:`ase.data.covalent_radii`, as
:func:`ase.neighborlist.natural_cutoffs` uses them), and clearly not bonded
when it is at least the cutoff grown by :data:`BOND_TOLERANCE`. A fragment
(molecule) is a connected component of the bonds. A pair in between, that
would join two fragments, is ambiguous and refused: ``mult`` then decides.

With the default :data:`DEFAULT_MULT`, the O-H bond of water (0.96 Å, cutoff
1.26 Å) is a bond and its hydrogen bonds (H...O 1.6 to 2.0 Å) are not. The
metal cations of :data:`IONS` (``Na+`` among waters, 2.4 Å from their O) bond
to nothing: each is a fragment of its own.

Fragments are numbered 0 .. K-1 in the order of their lowest atom index.

>>> from ase.build import molecule
>>> dimer = molecule("H2O") + molecule("H2O")
>>> dimer.positions[3:] += [0.0, 0.0, 3.0]
>>> bonded, unclear = bonded_pairs(dimer)
>>> bonded.tolist(), unclear.tolist()
([[0, 1], [0, 2], [3, 4], [3, 5]], [])
>>> assign_fragments(dimer).tolist()
[0, 0, 0, 1, 1, 1]
"""

from __future__ import annotations

from collections.abc import Iterable

import ase
import numpy as np

from ..errors import MBEInputError
from .io import FRAGMENT_KEY, check_cluster, describe, is_subcluster

__all__ = [
    "BOND_TOLERANCE",
    "DEFAULT_MULT",
    "IONS",
    "assign_fragments",
    "bonded_pairs",
    "fragment_structures",
]

#: half-width of the ambiguous band around a bond cutoff, relative to it: a
#: pair closer than ``(1 - BOND_TOLERANCE) * cutoff`` is bonded, one farther
#: than ``(1 + BOND_TOLERANCE) * cutoff`` is not, one in between is ambiguous
BOND_TOLERANCE = 0.1

#: default factor on the covalent radii: water's O-H (0.96 Å) is bonded up to
#: 1.13 Å and its hydrogen bonds are not down to H...O 1.39 Å
DEFAULT_MULT = 1.3

#: elements whose atoms bond to nothing (alkali and alkaline-earth metals,
#: cations among molecules): each such atom is a fragment of its own
IONS = ("Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba")


def bonded_pairs(
    atoms: ase.Atoms, mult: float = DEFAULT_MULT, ions: Iterable[str] = IONS
) -> tuple[np.ndarray, np.ndarray]:
    """The clearly bonded and the ambiguous atom pairs of a finite structure.

    :param atoms: a non-periodic structure (positions in Å).
    :param mult: factor on the covalent radii; the bond cutoff of a pair is
        ``mult * (r_i + r_j)`` Å.
    :param ions: element symbols whose atoms bond to nothing.
    :returns: ``(bonded, ambiguous)``, two integer arrays of shape ``(P, 2)``
        of pairs ``i < j`` in ascending order: distance at most
        ``(1 - BOND_TOLERANCE)`` times the cutoff, and strictly between
        ``(1 -/+ BOND_TOLERANCE)`` times the cutoff.
    :raises MBEInputError: for a periodic structure or a ``mult`` that is not
        a finite number > 0.
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    check_cluster(atoms)
    if not (np.isfinite(mult) and mult > 0):
        raise MBEInputError(f"mult {mult} is not a finite number > 0")
    radii = mult * covalent_radii[atoms.numbers]
    # every pair closer than the upper edge of the band: d < (1 + tol) (r_i + r_j)
    first, second, distances = neighbor_list("ijd", atoms, (1 + BOND_TOLERANCE) * radii)
    keep = first < second
    ion = np.isin(atoms.get_chemical_symbols(), list(ions))
    keep &= ~ion[first] & ~ion[second]
    first, second, distances = first[keep], second[keep], distances[keep]
    cutoffs = radii[first] + radii[second]
    bonded = distances <= (1 - BOND_TOLERANCE) * cutoffs
    pairs = np.stack([first, second], axis=1).astype(np.int64).reshape(-1, 2)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, bonded = pairs[order], bonded[order]
    return pairs[bonded], pairs[~bonded]


def assign_fragments(
    atoms: ase.Atoms, mult: float = DEFAULT_MULT, ions: Iterable[str] = IONS
) -> np.ndarray:
    """The fragment (molecule) of each atom: the connected components of
    :func:`bonded_pairs`, numbered 0 .. K-1 by their lowest atom index.

    An ambiguous pair within one fragment is harmless (the atoms are joined
    through other bonds); one between two fragments is refused.

    :param atoms: a non-periodic structure (positions in Å).
    :param mult: factor on the covalent radii (see :func:`bonded_pairs`).
    :param ions: element symbols whose atoms bond to nothing.
    :returns: integer array of shape ``(len(atoms),)``.
    :raises MBEInputError: for a periodic structure, or a pair of atoms of
        different fragments whose distance lies within :data:`BOND_TOLERANCE`
        of its bond cutoff, naming the structure and the atoms.
    """
    from ase.data import covalent_radii
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ions = tuple(ions)
    bonded, unclear = bonded_pairs(atoms, mult, ions)
    n_atoms = len(atoms)
    graph = coo_matrix(
        (np.ones(len(bonded)), (bonded[:, 0], bonded[:, 1])), shape=(n_atoms, n_atoms)
    )
    _, labels = connected_components(graph, directed=False)
    # renumber by each component's lowest atom index
    _, lowest = np.unique(labels, return_index=True)
    rank = np.empty(len(lowest), dtype=np.int64)
    rank[np.argsort(lowest)] = np.arange(len(lowest))
    fragments = rank[labels]
    across = [(i, j) for i, j in unclear if fragments[i] != fragments[j]]
    if across:
        i, j = across[0]
        distance = atoms.get_distance(i, j)
        symbols = atoms.get_chemical_symbols()
        cutoff = mult * float(covalent_radii[atoms.numbers[i]] + covalent_radii[atoms.numbers[j]])
        raise MBEInputError(
            f"{describe(atoms)}: atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are "
            f"{distance:.3f} Å apart, within {BOND_TOLERANCE:.0%} of their bond cutoff "
            f"{cutoff:.3f} Å (mult {mult:g}): neither clearly bonded nor clearly not "
            f"({len(across)} such pairs); another mult (--mult) decides"
        )
    return fragments


def fragment_structures(
    frames: list[ase.Atoms],
    mult: float = DEFAULT_MULT,
    ions: Iterable[str] = IONS,
    replace: bool = False,
) -> list[ase.Atoms]:
    """Copies of parent structures with ``arrays["mbe_fragment"]`` from
    :func:`assign_fragments` (an isolated atom is fragment 0).

    :param frames: parents or isolated atoms, non-periodic (positions in Å).
    :param mult: factor on the covalent radii (see :func:`bonded_pairs`).
    :param ions: element symbols whose atoms bond to nothing.
    :param replace: replace an ``mbe_fragment`` array a structure has, instead
        of refusing it.
    :raises MBEInputError: for a periodic structure, a sub-cluster (fragments
        are assigned on parents), a structure that has ``mbe_fragment`` without ``replace``,
        and what :func:`assign_fragments` refuses.
    """
    ions = tuple(ions)
    for atoms in frames:  # the quick checks of every structure first
        check_cluster(atoms)
        if is_subcluster(atoms):
            raise MBEInputError(
                f"{describe(atoms)}: field 'mbe_atoms' marks a sub-cluster; fragments are "
                "assigned on parents"
            )
        if FRAGMENT_KEY in atoms.arrays and not replace:
            raise MBEInputError(
                f"{describe(atoms)}: field '{FRAGMENT_KEY}' exists already; --replace replaces it"
            )
    done = []
    for atoms in frames:
        fragments = assign_fragments(atoms, mult, ions)
        copy = atoms.copy()
        if atoms.calc is not None:  # keep the labels: copy() drops the calculator
            from ase.calculators.singlepoint import SinglePointCalculator

            copy.calc = SinglePointCalculator(copy, **dict(atoms.calc.results))
        copy.arrays.pop(FRAGMENT_KEY, None)
        copy.set_array(FRAGMENT_KEY, fragments)
        done.append(copy)
    return done
