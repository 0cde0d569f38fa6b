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
from .io import PARENT_KEY, describe

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
    :param first_id: ``mbe_parent`` id of the first cluster (ids are consecutive).
    """
    if protocol not in PROTOCOLS:
        raise MBEInputError(f"--protocol: '{protocol}' is not one of {', '.join(PROTOCOLS)}")
    for frame in frames:
        if not np.all(frame.pbc):
            raise MBEInputError(f"{describe(frame)}: field 'pbc' must be periodic in 3D")
        if len(frame) < size:
            raise MBEInputError(f"{describe(frame)}: {len(frame)} atoms, fewer than --size {size}")
    choose = _nearest if protocol == "nearest" else _pairs
    rng = np.random.default_rng(seed)
    clusters: list[ase.Atoms] = []
    seen: set[tuple[int, frozenset[int]]] = set()
    attempts = 0
    while len(clusters) < count:
        attempts += 1
        if attempts > 100 * count:
            raise MBEInputError(
                f"{describe(frames[0])}: only {len(clusters)} distinct clusters found; "
                "give more or larger frames"
            )
        index = int(rng.integers(len(frames)))
        frame = frames[index]
        centre = int(rng.integers(len(frame)))
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
