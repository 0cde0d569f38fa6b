r"""Body-ordered contributions V(S) from sub-cluster energies E(S) (paper Eq. 2, 4).

V(S) = sum over T ⊆ S of (-1)^(|S|-|T|) E(T) is the Möbius inversion of E over the
subset lattice. It is exact for every S of a downward-closed family (a
:class:`SubsetPlan`), since it needs only the subsets of S. Two paths compute it:

- complete plans (all 2^N subsets, N <= 62) use the fast subset transform over
  bitmasks: one vectorised pass per body over views of a 2^N array, O(N · 2^N);
- any other family (truncated, screened, hundreds of bodies) runs one pass per
  body i over index tables, ``x[S] -= x[S \ {i}]`` for every kept S that holds
  i: O(sum over S of |S|) operations, on the plan's device.

Both are linear, so the same passes turn position gradients dE(S)/dr_i into
dV(S)/dr_i (Eq. 4); gradients use the plan's sparse atom rows
(:meth:`SubsetPlan.atom_rows`), since dV(S)/dr_i is zero outside S.

>>> import torch
>>> plan = SubsetPlan(2)
>>> # E(empty)=0, E({0})=E({1})=-1 (isolated atoms), E({0,1})=-3
>>> moebius_transform(torch.tensor([0.0, -1.0, -1.0, -3.0]), plan).tolist()
[0.0, -1.0, -1.0, -1.0]
"""

from __future__ import annotations

import torch

from .subsets import SubsetPlan

__all__ = ["moebius_gradients", "moebius_transform"]


def moebius_transform(
    values: torch.Tensor, plan: SubsetPlan, *, fast: bool | None = None
) -> torch.Tensor:
    """Möbius inversion of ``values`` over the sub-clusters of ``plan``.

    :param values: ``(plan.n_subsets, ...)``: E(S) in plan order (entry 0, the
        empty set, must be 0), with any trailing dimensions. Any dtype; use
        float64 for analysis: the alternating sum cancels large numbers.
    :param fast: use the bitmask subset transform (complete plans only);
        default: whenever the plan is complete.
    :return: V(S) with the same shape, dtype and device as ``values``.
    """
    if values.shape[0] != plan.n_subsets:
        raise ValueError(
            f"expected {plan.n_subsets} sub-cluster values for {plan!r}, got {values.shape[0]}"
        )
    if fast is None:
        fast = plan.is_complete
    if fast:
        if not plan.is_complete:
            raise ValueError(f"the fast subset transform needs a complete plan, not {plan!r}")
        return _subset_transform(values, plan)
    result = values.clone()
    for with_i, without_i, _, _ in plan.passes():
        result[with_i.to(values.device)] -= result[without_i.to(values.device)]
    return result


def moebius_gradients(rows: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Möbius inversion of sub-cluster gradients in the sparse row layout.

    :param rows: ``(n_rows, ...)``: dE(S)/dr_a for every atom row (S, a) of
        :meth:`SubsetPlan.atom_rows` (eV/Å, trailing dimensions e.g. 3).
    :return: dV(S)/dr_a in the same layout (dV(S)/dr_a is zero for atoms a
        outside S, which have no row).
    """
    n_rows = len(plan.atom_rows()[0])
    if rows.shape[0] != n_rows:
        raise ValueError(f"expected {n_rows} atom rows for {plan!r}, got {rows.shape[0]}")
    result = rows.clone()
    for _, _, row_with, row_without in plan.passes():
        result[row_with.to(rows.device)] -= result[row_without.to(rows.device)]
    return result


def _subset_transform(values: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """The fast subset transform, in bitmask order and back."""
    n = plan.n_bodies
    masks = plan.masks().to(values.device)
    trailing = values.shape[1:]
    dense = torch.empty_like(values)
    dense[masks] = values
    for i in range(n):
        # mask = (high bits, bit i, low bits)
        view = dense.view(1 << (n - 1 - i), 2, 1 << i, *trailing)
        view[:, 1] -= view[:, 0]
    return dense[masks]
