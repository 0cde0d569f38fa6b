"""The body-ordered terms of one parent cluster, with their per-order summaries.

>>> import torch
>>> plan = SubsetPlan(2)
>>> terms = BodyOrderTerms.from_energies(7, plan, torch.tensor([0.0, -1, -1, -3]))
>>> terms.v.tolist(), terms.v_tilde().tolist()
([0.0, -1.0, -1.0, -1.0], [-1.0, -0.5])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .moebius import moebius_gradients, moebius_transform
from .subsets import SubsetPlan
from .summary import energy_per_body, gradient_order_means, order_means, order_sums

__all__ = ["BodyOrderTerms"]


@dataclass
class BodyOrderTerms:
    """V(S) and dV(S)/dr of every sub-cluster of one parent.

    :param system: the parent's ``mbe_parent`` id.
    :param plan: the sub-clusters, in plan order.
    :param v: ``(plan.n_subsets,)`` V(S) in eV (entry 0, the empty set, is 0).
    :param dv: ``(n_rows, 3)`` dV(S)/dr_i in eV/Å in the plan's atom rows
        (:meth:`~.subsets.SubsetPlan.atom_rows`), or None.
    """

    system: int
    plan: SubsetPlan
    v: torch.Tensor
    dv: torch.Tensor | None = None

    @classmethod
    def from_energies(
        cls,
        system: int,
        plan: SubsetPlan,
        energies: torch.Tensor,
        gradients: torch.Tensor | None = None,
    ) -> BodyOrderTerms:
        """Möbius-invert sub-cluster energies E(S) (eV) and gradients dE(S)/dr
        (eV/Å, in the plan's atom rows) into V(S) and dV(S)/dr.
        """
        v = moebius_transform(energies, plan)
        dv = None if gradients is None else moebius_gradients(gradients, plan)
        return cls(system, plan, v, dv)

    def order_sums(self) -> torch.Tensor:
        """``(max_order,)``: sum of V(S) over ``|S| = m`` for m = 1 .. max_order (eV)."""
        return order_sums(self.v, self.plan)[1:]

    def v_tilde(self) -> torch.Tensor:
        """``(max_order,)``: Ṽ^(m) of Eq. 7 for m = 1 .. max_order (eV per body;
        NaN for orders the plan screens)."""
        return order_means(self.v, self.plan)[1:]

    def per_body(self) -> torch.Tensor:
        """``(max_order,)``: the m-body energy per body, sum of the kept V(S) / N,
        for m = 1 .. max_order (eV per body)."""
        return energy_per_body(self.v, self.plan)[1:]

    def dv_tilde(self) -> torch.Tensor:
        """``(max_order,)``: |dṼ^(m)/dr| of Eq. 8 for m = 1 .. max_order (eV/Å;
        NaN for orders the plan screens)."""
        if self.dv is None:
            raise ValueError(f"parent {self.system} has no gradients")
        return gradient_order_means(self.dv, self.plan)[1:]
