"""When a cluster in a periodic cell is the isolated cluster (TorchScript-compatible).

MD engines pass a cluster in a periodic box (LAMMPS ``boundary p p p``, i-PI,
which always sends a cell). The many-body expansion of the exported models is
defined for a finite cluster: :func:`check_isolated` accepts a periodic system
when no atom is within the model's interaction range R of a periodic image of
any atom (its own included), that is when

    |r_j + n·C - r_i| > R   for all atoms i, j and every lattice vector n·C ≠ 0,

with the rows of C the cell vectors a_1, a_2, a_3 and n integer. Then every
neighbour pair of the engine's periodic neighbour lists (cutoffs <= R) has a
zero cell shift: the inner model sees the isolated cluster, and the
sub-clusters, evaluated as non-periodic systems, are its sub-clusters.

How (cheap, exact for any cell shape). Let w_k = V / |a_{k+1} × a_{k+2}| be the
cell's width across its k-th lattice planes (the distance between them), f the
atoms' fractional coordinates (r = f·C, positions as given, not wrapped) and
s_k = max f_k - min f_k the cluster's span along k. An image shifted by n has
a fractional offset Δf_k + n_k along k with |Δf_k| <= s_k, and its distance
is at least |Δf_k + n_k| w_k, so

- along k, images one cell away (|n_k| = 1) are at least (1 - s_k) w_k away,
  and images two or more cells away (|n_k| >= 2) at least (2 - s_k) w_k;
- when (1 - s_k) w_k > R along every k (the cluster, whole inside the box,
  is farther than R from the box's periodic copies) the cluster is isolated,
  found in O(N) time;
- otherwise the images of the 26 neighbouring cells (n_k in {-1, 0, 1},
  only along the k where (1 - s_k) w_k <= R) are measured, one (N, N) distance
  matrix per translation (at most 13: n and -n give the same distances), at
  most O(27 N^2) time and O(N^2) memory; farther images cannot be closer
  when (2 - s_k) w_k > R along every k, which holds whenever the box is wider
  than R plus the cluster's extent in every direction (else the cell is
  refused as too narrow).

A cell periodic in some directions only is refused (a slab or a wire is not
an isolated cluster for this rule).
"""

import math

import torch
from metatomic.torch import System

__all__ = ["cell_widths", "check_isolated", "closest_image"]


def cell_widths(cell: torch.Tensor) -> torch.Tensor:
    """The distances between the lattice planes of ``cell`` (rows a_1, a_2, a_3,
    length unit of the cell, Å for metatrain models): w_k = V / |a_{k+1} ×
    a_{k+2}|, the cell's perpendicular widths, shape ``(3,)``."""
    volume = torch.abs(torch.linalg.det(cell))
    widths: list[torch.Tensor] = []
    for k in range(3):
        normal = torch.linalg.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])
        widths.append(volume / torch.linalg.norm(normal))
    return torch.stack(widths)


def closest_image(positions: torch.Tensor, cell: torch.Tensor, reach: float) -> list[float]:
    """``[closest, farther]``: the smallest distance between an atom and an image
    of an atom (itself included) in the 26 neighbouring cells, measured only
    along the directions where one could be within ``reach`` (``inf`` when
    none can: the cluster is then proven farther than ``reach`` from every
    image), and the least distance any image two or more cells away can have,
    min_k (2 - s_k) w_k (see the module's doc).

    :param positions: ``(N, 3)`` positions as given (not wrapped), Å.
    :param cell: ``(3, 3)`` periodic cell, rows the cell vectors, non-degenerate, Å.
    :param reach: the distance that matters (the interaction range), Å.
    """
    positions = positions.detach()
    cell = cell.detach()
    inf = float("inf")
    if positions.shape[0] == 0:
        return [inf, inf]
    widths = cell_widths(cell)
    fractional = positions @ torch.linalg.inv(cell)
    spans = fractional.max(dim=0).values - fractional.min(dim=0).values
    near: list[float] = ((1.0 - spans) * widths).tolist()  # lower bounds, |n_k| = 1
    farther = float(((2.0 - spans) * widths).min())
    steps: list[list[int]] = []
    for k in range(3):
        steps.append([-1, 0, 1] if near[k] <= reach else [0])
    centred = positions - positions.mean(dim=0)
    closest = inf
    for n0 in steps[0]:
        for n1 in steps[1]:
            for n2 in steps[2]:
                # n and -n give the same distances (pairs swapped): keep the
                # translations whose first non-zero component is positive
                if n0 < 0 or (n0 == 0 and (n1 < 0 or (n1 == 0 and n2 <= 0))):
                    continue
                shift = float(n0) * cell[0] + float(n1) * cell[1] + float(n2) * cell[2]
                distance = float(torch.cdist(centred, centred + shift).min())
                closest = min(closest, distance)
    return [closest, farther]


def check_isolated(system: System, interaction_range: float) -> None:
    """Refuse a system that is not an isolated cluster: periodic in some
    directions only, or in a periodic cell where an atom may be within
    ``interaction_range`` (Å) of a periodic image of an atom, itself included
    (see the module's doc). A non-periodic system, or a periodic one whose
    atoms are all farther than the range from every image, passes: the
    expansion then treats it as the isolated cluster.

    :raises ValueError: in one line, with the closest image's distance, the
        range and what to do.
    """
    pbc = system.pbc
    if not bool(pbc.any()):
        return
    if not bool(pbc.all()):
        raise ValueError(
            "the many-body expansion needs an isolated cluster: a system periodic in some "
            "directions only is not one; use a box periodic in all three directions (wider "
            "than the cluster plus the interaction range) or a non-periodic system"
        )
    cell = system.cell.detach()
    if not bool(torch.abs(torch.linalg.det(cell)) > 0):
        raise ValueError(
            "the many-body expansion needs an isolated cluster: the periodic cell has zero "
            "volume; give a box wider than the cluster plus the interaction range in every "
            "direction, or a non-periodic system"
        )
    found = closest_image(system.positions, cell, interaction_range)
    closest, farther = found[0], found[1]
    if closest > interaction_range and farther > interaction_range:
        return
    reach = _length(interaction_range)
    if closest > interaction_range:
        width = _length(float(cell_widths(cell).min()))
        where = (
            f"the closest image in the neighbouring cells is {_length(closest)} Å away, but the "
            f"cell (narrowest width {width} Å) is too small for the cluster and the range"
        )
    else:
        where = f"an atom is {_length(closest)} Å from a periodic image"
    raise ValueError(
        "the many-body expansion needs an isolated cluster, but in this periodic cell atoms "
        f"may be within the interaction range ({reach} Å) of periodic images: {where}; use a "
        f"box wider than the cluster's extent plus {reach} Å in every direction, with the "
        "cluster whole inside it, or a non-periodic system"
    )


def _length(value: float) -> str:
    """``value`` with at most 3 decimals, trailing zeros dropped (``11``,
    ``9.961``), for messages (TorchScript prints floats with 17 digits)."""
    if not math.isfinite(value):
        return str(value)
    milli = int(round(abs(value) * 1000.0))
    sign = "-" if value < 0 and milli > 0 else ""
    whole = str(milli // 1000)
    decimals = str(milli % 1000).zfill(3).rstrip("0")
    return sign + whole + ("." + decimals if len(decimals) > 0 else "")
