"""Clusters cut from periodic frames: the paper's two protocols and spheres.

- ``nearest``: a random atom and its size-1 nearest neighbours (minimum image);
  the paper's high-density protocol.
- ``pairs``: a random atom and its closest neighbour, then the nearest pairs
  (an atom not yet taken and its closest free neighbour), pair by pair by
  distance to the first atom, until ``size`` atoms; the low-density protocol,
  which keeps H2 molecules whole.
- ``sphere``: a random centre atom and every body within ``radius`` Å of it
  (minimum image), for frames of any elements. With ``bodies="molecules"``
  (the default), a molecule is kept when its closest atom is within
  ``radius`` of the centre atom, and it is kept whole; with
  ``bodies="atoms"``, every atom within ``radius`` is kept. Molecules are found
  by the bonding rule of :mod:`.fragments` (covalent radii times ``mult``, the
  :data:`~.fragments.BOND_TOLERANCE` band, :data:`~.fragments.IONS` bonded to
  nothing), applied to the periodic frame. The cluster lists the molecules by
  the distance of their closest atom to the centre atom (ties: lowest atom
  index in the frame), each molecule's atoms by their distance to it, and
  carries the per-atom array ``mbe_fragment`` (0 .. K-1, in that order: also
  the numbering :func:`~.fragments.assign_fragments` finds on the cluster).
  The centre atom is atom 0.

Clusters are unwrapped around the first (centre) atom, each molecule made
whole across the cell boundary, centred at the origin (the mean of their
positions), non-periodic (pbc False, zero cell), and keep the frame's info keys
(e.g. ``regime``).
"""

from __future__ import annotations

from collections.abc import Iterable

import ase
import numpy as np

from ..errors import MBEInputError
from .fragments import BOND_TOLERANCE, DEFAULT_MULT, IONS
from .io import FRAGMENT_KEY, PARENT_KEY, describe, source_file

__all__ = ["SPHERE_BODIES", "DEFAULT_SIZE", "PROTOCOLS", "check_options", "sample_clusters"]

PROTOCOLS = ("nearest", "pairs", "sphere")

#: the bodies of a ``sphere`` cluster: whole molecules (the default) or atoms
SPHERE_BODIES = ("molecules", "atoms")

#: atoms per ``nearest`` and ``pairs`` cluster when no size is given
DEFAULT_SIZE = 8


def _vectors(frame: ase.Atoms, centre: int) -> np.ndarray:
    """Minimum-image vectors (Å) from atom ``centre`` to every atom."""
    from ase.geometry import find_mic

    vectors, _ = find_mic(frame.positions - frame.positions[centre], frame.cell, frame.pbc)
    return vectors


def _nearest(frame: ase.Atoms, centre: int, size: int) -> list[int]:
    distances = np.linalg.norm(_vectors(frame, centre), axis=1)
    return [int(i) for i in np.argsort(distances, kind="stable")[:size]]


def _pairs(frame: ase.Atoms, centre: int, size: int) -> list[int]:
    vectors = _vectors(frame, centre)
    order = np.argsort(np.linalg.norm(vectors, axis=1), kind="stable")
    chosen: list[int] = []
    for atom in order:
        if len(chosen) >= size:
            break
        if atom in chosen:
            continue
        partner_vectors = vectors - vectors[atom]
        distances = np.linalg.norm(partner_vectors, axis=1)
        distances[chosen + [atom]] = np.inf
        chosen.append(int(atom))
        if len(chosen) < size:
            chosen.append(int(np.argmin(distances)))
    return chosen


def _molecules(
    frame: ase.Atoms, mult: float, ions: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The molecules of a periodic frame and their unwrapped positions.

    The bonding rule of :func:`.fragments.bonded_pairs` on the periodic frame
    (one neighbour list with the cell and pbc, O(atoms)): the molecules are the
    connected components of the bonds, numbered 0 .. K-1 by their lowest atom
    index. Each molecule is made whole by the minimum image from its lowest
    atom; a bond that the unwrapped positions do not reproduce means a molecule
    that spans more than half the cell or is bonded to its own periodic image.

    :returns: ``(labels, positions)``: the molecule of each atom, shape ``(N,)``,
        and positions (Å, shape ``(N, 3)``) in which every molecule is contiguous.
    :raises MBEInputError: for a pair of atoms of two molecules within
        :data:`~.fragments.BOND_TOLERANCE` of its bond cutoff, and for a
        molecule that spans more than half the cell (or an infinite one).
    """
    from ase.data import covalent_radii
    from ase.geometry import find_mic
    from ase.neighborlist import neighbor_list
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    radii = mult * covalent_radii[frame.numbers]
    first, second, distances, vectors = neighbor_list("ijdD", frame, (1 + BOND_TOLERANCE) * radii)
    ion = np.isin(frame.get_chemical_symbols(), list(ions))
    keep = ~ion[first] & ~ion[second]
    first, second, distances, vectors = first[keep], second[keep], distances[keep], vectors[keep]
    cutoffs = radii[first] + radii[second]
    bonded = distances <= (1 - BOND_TOLERANCE) * cutoffs
    n_atoms = len(frame)
    graph = coo_matrix(
        (np.ones(int(bonded.sum())), (first[bonded], second[bonded])), shape=(n_atoms, n_atoms)
    )
    _, components = connected_components(graph, directed=False)
    _, lowest = np.unique(components, return_index=True)
    rank = np.empty(len(lowest), dtype=np.int64)
    rank[np.argsort(lowest)] = np.arange(len(lowest))
    labels = rank[components]
    across = np.flatnonzero(~bonded & (labels[first] != labels[second]))
    if len(across):
        k = across[np.lexsort((second[across], first[across]))[0]]
        i, j = int(first[k]), int(second[k])
        symbols = frame.get_chemical_symbols()
        raise MBEInputError(
            f"{describe(frame)}: atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are "
            f"{distances[k]:.3f} Å apart (minimum image), within {BOND_TOLERANCE:.0%} of "
            f"their bond cutoff {cutoffs[k]:.3f} Å (mult {mult:g}): neither clearly bonded "
            f"nor clearly not ({len(across) // 2} such pairs); another --mult decides"
        )
    roots = np.sort(lowest)[labels]  # the lowest atom of each atom's molecule
    shifts, _ = find_mic(frame.positions - frame.positions[roots], frame.cell, frame.pbc)
    positions = frame.positions[roots] + shifts
    mismatch = np.linalg.norm(
        positions[second[bonded]] - positions[first[bonded]] - vectors[bonded], axis=1
    )
    broken = np.flatnonzero(mismatch > 1e-6)
    if len(broken):
        molecule = np.flatnonzero(labels == labels[first[bonded][broken[0]]])
        shown = ", ".join(map(str, molecule[:5])) + (", ..." if len(molecule) > 5 else "")
        raise MBEInputError(
            f"{describe(frame)}: the molecule of atoms {shown} ({len(molecule)} atoms) "
            "spans more than half the cell or is bonded to its own periodic image (a "
            "chain or slab across the cell boundary); --protocol sphere needs finite "
            "molecules smaller than half the cell (--bodies atoms cuts atoms instead)"
        )
    return labels, positions


def _sphere(
    frame: ase.Atoms,
    centre: int,
    radius: float,
    molecules: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[list[int], np.ndarray, np.ndarray | None]:
    """The atoms of the sphere of ``radius`` Å around atom ``centre``: their
    indices, their positions relative to the centre atom (molecules whole) and
    their molecule numbers 0 .. K-1 (None for atoms), in the order of the module
    doc."""
    vectors = _vectors(frame, centre)
    distances = np.linalg.norm(vectors, axis=1)
    if molecules is None:
        atoms = np.flatnonzero(distances <= radius)
        atoms = atoms[np.argsort(distances[atoms], kind="stable")]
        bodies, what, fragments = len(atoms), "atom", None
        positions = vectors[atoms]
    else:
        labels, unwrapped = molecules
        # each molecule's atoms closest first (ties: lowest index); its anchor is the first
        order = np.lexsort((distances, labels))
        present, first = np.unique(labels[order], return_index=True)
        anchor = np.empty(int(labels.max()) + 1, dtype=np.int64)
        anchor[present] = order[first]
        closest = distances[anchor]
        kept = np.flatnonzero(closest <= radius)
        kept = kept[np.argsort(closest[kept], kind="stable")]  # ties: lowest atom index
        rank = np.full(len(anchor), -1, dtype=np.int64)
        rank[kept] = np.arange(len(kept))
        atoms = np.flatnonzero(rank[labels] >= 0)
        atoms = atoms[np.lexsort((distances[atoms], rank[labels[atoms]]))]
        owner = anchor[labels[atoms]]
        positions = vectors[owner] + unwrapped[atoms] - unwrapped[owner]
        # every atom within the radius is kept; elsewhere than its minimum
        # image only if the sphere meets two images of its molecule
        inside = distances[atoms] <= radius
        moved = np.linalg.norm(positions - vectors[atoms], axis=1) > 1e-6
        if (inside & moved).any():
            atom = int(atoms[np.flatnonzero(inside & moved)[0]])
            raise MBEInputError(
                f"{describe(frame)}: the sphere of --radius {radius:g} Å around atom "
                f"{centre} meets two periodic images of the molecule of atom {atom}; "
                "give a smaller --radius or a larger cell"
            )
        bodies, what, fragments = len(kept), "molecule", rank[labels[atoms]]
    if bodies < 2:
        raise MBEInputError(
            f"{describe(frame)}: {bodies} {what} within --radius {radius:g} Å of atom "
            f"{centre}; a cluster has at least 2 bodies: give a larger --radius"
        )
    return [int(i) for i in atoms], positions, fragments


def check_options(
    protocol: str,
    size: int | None,
    radius: float | None = None,
    bodies: str | None = None,
    mult: float | None = None,
) -> None:
    """Refuse a protocol and options that do not go together (see
    :func:`sample_clusters`), before any frame is read.

    :raises MBEInputError: naming the flag.
    """
    if protocol not in PROTOCOLS:
        raise MBEInputError(f"--protocol: '{protocol}' is not one of {', '.join(PROTOCOLS)}")
    if protocol != "sphere":
        for flag, value in (("--radius", radius), ("--bodies", bodies), ("--mult", mult)):
            if value is not None:
                raise MBEInputError(f"{flag}: only --protocol sphere takes it, not {protocol}")
        if size is not None and size < 2:
            raise MBEInputError(f"--size: {size} atoms; a cluster has at least 2")
        return
    if size is not None:
        raise MBEInputError(
            "--size: --protocol sphere takes no size (its clusters hold every body within --radius)"
        )
    if radius is None:
        raise MBEInputError("--radius: --protocol sphere needs a radius (Å)")
    if not (np.isfinite(radius) and radius > 0):
        raise MBEInputError(f"--radius: {radius} is not a finite number > 0")
    if bodies is not None and bodies not in SPHERE_BODIES:
        raise MBEInputError(f"--bodies: '{bodies}' is not one of {', '.join(SPHERE_BODIES)}")
    if mult is not None:
        if bodies == "atoms":
            raise MBEInputError("--mult: --bodies atoms finds no molecules")
        if not (np.isfinite(mult) and mult > 0):
            raise MBEInputError(f"--mult: {mult} is not a finite number > 0")


def sample_clusters(
    frames: list[ase.Atoms],
    protocol: str,
    size: int | None,
    count: int,
    seed: int = 0,
    first_id: int = 0,
    *,
    radius: float | None = None,
    bodies: str | None = None,
    mult: float | None = None,
    ions: Iterable[str] = IONS,
) -> list[ase.Atoms]:
    """Cut ``count`` distinct clusters from random atoms of random frames (a
    draw that repeats an atom set of the same frame is redrawn, so no cluster
    appears twice, e.g. across training and test splits).

    Cost: ``nearest`` and ``sphere`` compute one set of minimum-image vectors
    per draw, O(atoms of the frame); ``pairs`` one per pair. ``sphere`` with
    molecules adds one neighbour list per frame (the bonds, O(atoms), built at
    the frame's first draw and kept).

    :param protocol: ``"nearest"``, ``"pairs"`` or ``"sphere"`` (see module doc).
    :param size: atoms per ``nearest`` or ``pairs`` cluster, at least 2 and at
        most the atoms of a frame (None: :data:`DEFAULT_SIZE`); None for ``sphere``.
    :param count: number of clusters, at least 1; each (frame, first atom)
        gives one cluster, so the frames must have ``count`` atoms in all.
    :param first_id: ``mbe_parent`` id of the first cluster (ids are consecutive).
    :param radius: ``sphere`` only, and needed by it: the radius (Å, > 0) around
        the centre atom, at most half the shortest perpendicular width of every
        frame's cell (a larger sphere would see periodic images of itself).
    :param bodies: ``sphere`` only: ``"molecules"`` (None, the default) or ``"atoms"``.
    :param mult: ``sphere`` with molecules only: factor on the covalent radii
        (None: :data:`~.fragments.DEFAULT_MULT`), as in :func:`.fragments.bonded_pairs`.
    :param ions: element symbols whose atoms bond to nothing (``sphere`` with molecules).
    :raises MBEInputError: for a bad protocol, size, radius, option or count, a
        frame that is not periodic, a radius beyond half a frame's cell width,
        a molecule that spans more than half the cell, a sphere with fewer than
        2 bodies, or frames that hold fewer than ``count`` distinct clusters (as
        soon as every atom of every frame was drawn).
    """
    check_options(protocol, size, radius, bodies, mult)
    if count < 1:
        raise MBEInputError(f"--count: {count}; sample at least 1 cluster")
    if protocol != "sphere" and size is None:
        size = DEFAULT_SIZE
    for frame in frames:
        if not np.all(frame.pbc):
            raise MBEInputError(f"{describe(frame)}: field 'pbc' must be periodic in 3D")
        if size is not None and len(frame) < size:
            raise MBEInputError(f"{describe(frame)}: {len(frame)} atoms, fewer than --size {size}")
        if radius is not None:
            if not abs(frame.cell.volume) > 0:
                raise MBEInputError(f"{describe(frame)}: field 'Lattice' is a cell of zero volume")
            width = float(np.min(1 / np.linalg.norm(frame.cell.reciprocal(), axis=1)))
            if radius > width / 2:
                raise MBEInputError(
                    f"{describe(frame)}: --radius {radius:g} Å is more than half the "
                    f"shortest perpendicular width {width:.3f} Å of the cell: the sphere would "
                    f"see periodic images of itself (at most {width / 2:.3f} Å)"
                )
    starts = sum(len(frame) for frame in frames)
    if count > starts:
        raise MBEInputError(
            f"--count: {count} clusters but the {len(frames)} frames of "
            f"{source_file(frames)} have {starts} atoms to start one from; give more or "
            "larger frames"
        )
    molecular = protocol == "sphere" and bodies != "atoms"
    ions = tuple(ions)
    molecules: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    rng = np.random.default_rng(seed)
    clusters: list[ase.Atoms] = []
    seen: set[tuple[int, frozenset[int]]] = set()
    drawn: set[tuple[int, int]] = set()
    while len(clusters) < count:
        if len(drawn) == starts:
            raise MBEInputError(
                f"--count: {count} clusters but the {len(frames)} frames of "
                f"{source_file(frames)} give only {len(clusters)} distinct ones; give more "
                "or larger frames"
            )
        index = int(rng.integers(len(frames)))
        frame = frames[index]
        centre = int(rng.integers(len(frame)))
        if (index, centre) in drawn:
            continue
        drawn.add((index, centre))
        fragments = None
        if protocol == "sphere":
            assert radius is not None
            if molecular and index not in molecules:
                molecules[index] = _molecules(frame, DEFAULT_MULT if mult is None else mult, ions)
            atoms, positions, fragments = _sphere(frame, centre, radius, molecules.get(index))
        else:
            assert size is not None
            atoms = (_nearest if protocol == "nearest" else _pairs)(frame, centre, size)
            positions = _vectors(frame, centre)[atoms]
        if (index, frozenset(atoms)) in seen:
            continue
        seen.add((index, frozenset(atoms)))
        k = len(clusters)
        cluster = ase.Atoms(numbers=frame.numbers[atoms], positions=positions - positions.mean(0))
        if fragments is not None:
            cluster.set_array(FRAGMENT_KEY, fragments.astype(np.int64))
        cluster.info.update(
            {key: value for key, value in frame.info.items() if not key.startswith("_")}
        )
        cluster.info[PARENT_KEY] = first_id + k
        clusters.append(cluster)
    return clusters
