"""Clusters cut from periodic frames with the paper's two protocols.

- ``nearest``: a random atom and its size-1 nearest neighbours (minimum image);
  the paper's high-density protocol.
- ``pairs``: a random atom and its closest neighbour, then the nearest pairs
  (an atom not yet taken and its closest free neighbour), pair by pair by
  distance to the first atom, until ``size`` atoms; the low-density protocol,
  which keeps H2 molecules whole.

Clusters are unwrapped around the first atom, centred at the origin,
non-periodic, and keep the frame's info keys (e.g. ``regime``).
"""

from __future__ import annotations

import ase
import numpy as np

from ..errors import MBEInputError
from .io import PARENT_KEY, describe, source_file

__all__ = ["PROTOCOLS", "sample_clusters"]

PROTOCOLS = ("nearest", "pairs")


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


def sample_clusters(
    frames: list[ase.Atoms],
    protocol: str,
    size: int,
    count: int,
    seed: int = 0,
    first_id: int = 0,
) -> list[ase.Atoms]:
    """Cut ``count`` distinct clusters of ``size`` atoms from random atoms of
    random frames (a draw that repeats an atom set of the same frame is redrawn,
    so no cluster appears twice, e.g. across training and test splits).

    :param protocol: ``"nearest"`` or ``"pairs"`` (see module doc).
    :param size: atoms per cluster, at least 2 and at most the atoms of a frame.
    :param count: number of clusters, at least 1; each (frame, first atom)
        gives one cluster, so the frames must have ``count`` atoms in all.
    :param first_id: ``mbe_parent`` id of the first cluster (ids are consecutive).
    :raises MBEInputError: for a bad protocol, size or count, a frame that is
        not periodic, or frames that hold fewer than ``count`` distinct clusters
        (as soon as every atom of every frame was drawn).
    """
    if protocol not in PROTOCOLS:
        raise MBEInputError(f"--protocol: '{protocol}' is not one of {', '.join(PROTOCOLS)}")
    if size < 2:
        raise MBEInputError(f"--size: {size} atoms; a cluster has at least 2")
    if count < 1:
        raise MBEInputError(f"--count: {count}; sample at least 1 cluster")
    for frame in frames:
        if not np.all(frame.pbc):
            raise MBEInputError(f"{describe(frame)}: field 'pbc' must be periodic in 3D")
        if len(frame) < size:
            raise MBEInputError(f"{describe(frame)}: {len(frame)} atoms, fewer than --size {size}")
    starts = sum(len(frame) for frame in frames)
    if count > starts:
        raise MBEInputError(
            f"--count: {count} clusters but the {len(frames)} frames of "
            f"{source_file(frames)} have {starts} atoms to start one from; give more or "
            "larger frames"
        )
    choose = _nearest if protocol == "nearest" else _pairs
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
        atoms = choose(frame, centre, size)
        if (index, frozenset(atoms)) in seen:
            continue
        seen.add((index, frozenset(atoms)))
        k = len(clusters)
        positions = _vectors(frame, centre)[atoms]
        cluster = ase.Atoms(numbers=frame.numbers[atoms], positions=positions - positions.mean(0))
        cluster.info.update(
            {key: value for key, value in frame.info.items() if not key.startswith("_")}
        )
        cluster.info[PARENT_KEY] = first_id + k
        clusters.append(cluster)
    return clusters
