"""Layer 1 — the many-body expansion as pure tensor math (torch, any device).

Nothing here reads files or runs a model: it lists the sub-clusters to compute
(:class:`SubsetPlan`) and turns their energies and gradients into body-ordered
terms (:func:`moebius_transform`) and per-order summaries.
"""

from .moebius import moebius_transform
from .subsets import DEFAULT_MAX_ATOMS, SubsetPlan, atoms_of, mask_of
from .summary import gradient_order_means, order_means, order_sums, truncated_energy
from .terms import BodyOrderTerms

__all__ = [
    "BodyOrderTerms",
    "DEFAULT_MAX_ATOMS",
    "SubsetPlan",
    "atoms_of",
    "gradient_order_means",
    "mask_of",
    "moebius_transform",
    "order_means",
    "order_sums",
    "truncated_energy",
]
