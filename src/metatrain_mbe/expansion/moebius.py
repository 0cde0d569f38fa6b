"""Body-ordered contributions V(S) from sub-cluster energies E(S) (paper Eq. 2, 4).

V(S) = sum over T ⊆ S of (-1)^(|S|-|T|) E(T) is the Möbius inversion of E over the
subset lattice. The fast subset transform computes it for every S in
O(N · 2^N) operations (one vectorised pass per body), instead of the O(3^N) of
the recursion of Eq. 2. The transform is linear, so the same passes turn
position gradients dE(S)/dr_i into dV(S)/dr_i (Eq. 4).

>>> import torch
>>> plan = SubsetPlan(2)
>>> # E(empty)=0, E({0})=E({1})=-1 (isolated atoms), E({0,1})=-3
>>> moebius_transform(torch.tensor([0.0, -1.0, -1.0, -3.0]), plan).tolist()
[0.0, -1.0, -1.0, -1.0]
"""

from __future__ import annotations

import torch

from .subsets import SubsetPlan

__all__ = ["moebius_transform"]


def moebius_transform(values: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Möbius inversion of ``values`` over the sub-clusters of ``plan``.

    :param values: tensor of shape ``(plan.n_subsets, ...)``: E(S) in the order of
        ``plan.masks`` (entry 0, the empty set, must be 0), with any trailing
        dimensions (several parents, or gradients ``(..., N, 3)``). Any dtype;
        use float64 for analysis: the alternating sum cancels large numbers.
    :param plan: the sub-clusters the values belong to. For a truncated plan,
        the result is exact for every S in the plan, because V(S) only depends
        on the subsets of S.
    :return: V(S) with the same shape, dtype and device as ``values``.
    """
    if values.shape[0] != plan.n_subsets:
        raise ValueError(
            f"expected {plan.n_subsets} sub-cluster values for {plan!r}, got {values.shape[0]}"
        )
    result = values.clone()
    trailing = values.shape[1:]
    if plan.is_complete:
        # position == mask: for body i, view as (high bits, bit i, low bits)
        n = plan.n_bodies
        for i in range(n):
            view = result.view(1 << (n - 1 - i), 2, 1 << i, *trailing)
            view[:, 1] -= view[:, 0]
    else:
        for with_i, without_i in plan.partners():
            result[with_i] -= result[without_i]
    return result
