"""Per-order summaries of an expansion: Eq. 7, Eq. 8, energies per body and
truncated energies.

All functions take V(S) in plan order (and dV(S)/dr in the plan's atom rows),
as returned by :func:`moebius_transform` and :func:`moebius_gradients`, with the
sub-cluster (or row) axis first. Eq. 7 and 8 average over all C(N, m)
sub-clusters of an order: for an order that screening thins they are NaN, and
:func:`energy_per_body` (sum over the kept ones, per body) describes it.

>>> import torch
>>> from metatrain_mbe.expansion import SubsetPlan, moebius_transform
>>> plan = SubsetPlan(3)
>>> e = torch.tensor([0.0, -1, -1, -1, -3, -3, -3, -6], dtype=torch.float64)
>>> v = moebius_transform(e, plan)
>>> order_sums(v, plan).tolist()  # orders 0..3
[0.0, -3.0, -3.0, 0.0]
>>> truncated_energy(v, plan, 2).item()  # E_2 = sum over |S| <= 2
-6.0
>>> energy_per_body(v, plan).tolist()
[0.0, -1.0, -1.0, 0.0]
"""

from __future__ import annotations

import torch

from .subsets import SubsetPlan

__all__ = [
    "energy_per_body",
    "gradient_order_means",
    "order_means",
    "order_sums",
    "truncated_energy",
]


def order_sums(v: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Sum of V(S) over the kept sub-clusters of each order.

    :param v: ``(n_subsets, ...)`` contributions V(S) (eV).
    :return: ``(max_order + 1, ...)``: entry m is the sum over the kept
        ``|S| = m`` (entry 0 is the empty set, 0).
    """
    out = torch.zeros((plan.max_order + 1, *v.shape[1:]), dtype=v.dtype, device=v.device)
    return out.index_add_(0, plan.orders.to(v.device), v)


def energy_per_body(v: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """The m-body energy per body, sum over the kept ``|S| = m`` of V(S) / N
    (eV per body): comparable across cluster sizes and screened families.

    :return: ``(max_order + 1, ...)``; entry 0 is 0.
    """
    return order_sums(v, plan) / plan.n_bodies


def order_means(v: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Ṽ^(m) = sum over ``|S| = m`` of V(S) / (C(N, m) · m), paper Eq. 7 (eV per
    body: eV/atom, or eV/molecule when the bodies are fragments); NaN for an
    order the plan does not hold completely.

    :return: ``(max_order + 1, ...)``; entry 0 is 0.
    """
    norm = _full_counts(plan, v) * torch.arange(plan.max_order + 1, dtype=v.dtype)
    norm = norm.to(v.device)
    norm[0] = 1.0
    return order_sums(v, plan) / norm.view(-1, *([1] * (v.dim() - 1)))


def gradient_order_means(dv: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """|dṼ^(m)/dr|, paper Eq. 8 (eV/Å): the mean over ``|S| = m`` of the RMS over
    the atoms i of S of ``|dV(S)/dr_i|`` (all atoms of its fragments when the
    bodies are fragments); NaN for an order not held completely.

    :param dv: ``(n_rows, ..., 3)`` gradients dV(S)/dr_i (eV/Å) in the plan's
        atom rows.
    :return: ``(max_order + 1, ...)``; entry 0 is 0.
    """
    subset, _, _ = plan.atom_rows()
    squares = torch.zeros((plan.n_subsets, *dv.shape[1:-1]), dtype=dv.dtype, device=dv.device)
    squares.index_add_(0, subset.to(dv.device), dv.square().sum(-1))
    size = plan.atom_counts().to(dv.device).clamp(min=1).to(dv.dtype)
    rms = torch.sqrt(squares / size.view(-1, *([1] * (squares.dim() - 1))))
    counts = _full_counts(plan, dv).to(dv.device)
    counts[0] = 1.0
    return order_sums(rms, plan) / counts.view(-1, *([1] * (rms.dim() - 1)))


def truncated_energy(v: torch.Tensor, plan: SubsetPlan, order: int) -> torch.Tensor:
    """E_k = sum over the kept ``|S| <= k`` of V(S): the k-body truncated
    expansion (eV). With k = N on a complete plan, the total energy."""
    if order > plan.max_order:
        raise ValueError(f"cannot truncate at order {order}: the plan stops at {plan.max_order}")
    keep = (plan.orders <= order).to(v.device)
    return v[keep].sum(0)


def _full_counts(plan: SubsetPlan, like: torch.Tensor) -> torch.Tensor:
    """C(N, m) for the orders held completely, NaN for the others."""
    return torch.tensor(
        [plan.count(m) if plan.is_full(m) else float("nan") for m in range(plan.max_order + 1)],
        dtype=like.dtype,
    )
