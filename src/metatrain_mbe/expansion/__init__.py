"""Layer 1 — the many-body expansion as pure tensor math (torch, any device).

Nothing here reads files or runs a model: it lists the sub-clusters to compute
(:class:`SubsetPlan`, optionally screened by :class:`Cutoffs`) and turns their
energies and gradients into body-ordered terms (:func:`moebius_transform`,
:func:`moebius_gradients`) and per-order summaries.
"""

from .moebius import moebius_gradients, moebius_transform
from .screening import Cutoffs
from .subsets import DEFAULT_MAX_ATOMS, MAX_SUBCLUSTERS, SubsetPlan
from .summary import (
    energy_per_body,
    gradient_order_means,
    order_means,
    order_sums,
    truncated_energy,
)
from .terms import BodyOrderTerms

__all__ = [
    "BodyOrderTerms",
    "Cutoffs",
    "DEFAULT_MAX_ATOMS",
    "MAX_SUBCLUSTERS",
    "SubsetPlan",
    "energy_per_body",
    "gradient_order_means",
    "moebius_gradients",
    "moebius_transform",
    "order_means",
    "order_sums",
    "truncated_energy",
]
