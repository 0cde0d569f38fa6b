"""Per-order summaries of an expansion: Eq. 7, Eq. 8 and truncated energies.

All functions take V(S) (and dV(S)/dr) in the order of a :class:`SubsetPlan`,
as returned by :func:`moebius_transform`, with the subset axis first.

>>> import torch
>>> from metatrain_mbe.expansion import SubsetPlan, moebius_transform
>>> plan = SubsetPlan(3)
>>> e = torch.tensor([0.0, -1, -1, -3, -1, -3, -3, -6], dtype=torch.float64)
>>> v = moebius_transform(e, plan)
>>> order_sums(v, plan).tolist()  # orders 0..3
[0.0, -3.0, -3.0, 0.0]
>>> truncated_energy(v, plan, 2).item()  # E_2 = sum over |S| <= 2
-6.0
"""

from __future__ import annotations

import torch

from .subsets import SubsetPlan

__all__ = ["order_sums", "order_means", "gradient_order_means", "truncated_energy"]


def order_sums(v: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Sum of V(S) over the sub-clusters of each order.

    :param v: ``(n_subsets, ...)`` contributions V(S) (eV).
    :return: ``(max_order + 1, ...)``: entry m is sum over ``|S| = m`` (entry 0 is
        the empty set, 0).
    """
    out = torch.zeros((plan.max_order + 1, *v.shape[1:]), dtype=v.dtype, device=v.device)
    return out.index_add_(0, plan.orders.to(v.device), v)


def order_means(v: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """Ṽ^(m) = sum over ``|S| = m`` of V(S) / (C(N, m) · m), paper Eq. 7 (eV per
    body: eV/atom, or eV/molecule when the bodies are fragments).

    :return: ``(max_order + 1, ...)``; entry 0 is 0.
    """
    norm = _order_counts(plan, v) * torch.arange(plan.max_order + 1, dtype=v.dtype)
    norm = norm.to(v.device)
    norm[0] = 1.0
    return order_sums(v, plan) / norm.view(-1, *([1] * (v.dim() - 1)))


def gradient_order_means(dv: torch.Tensor, plan: SubsetPlan) -> torch.Tensor:
    """|dṼ^(m)/dr|, paper Eq. 8 (eV/Å): the mean over ``|S| = m`` of the RMS over
    the atoms i of S of ``|dV(S)/dr_i|`` (all atoms of its fragments when the
    bodies are fragments).

    :param dv: ``(n_subsets, ..., n_atoms, 3)`` gradients dV(S)/dr_i (eV/Å),
        zero for atoms outside S (as the Möbius transform of sub-cluster
        gradients gives).
    :return: ``(max_order + 1, ...)``; entry 0 is 0.
    """
    atoms = plan.atom_counts().to(dv.device)
    size = atoms.clamp(min=1).to(dv.dtype).view(-1, *([1] * (dv.dim() - 3)))
    rms = torch.sqrt(dv.square().sum(dim=(-1, -2)) / size)
    counts = _order_counts(plan, dv).to(dv.device)
    return order_sums(rms, plan) / counts.view(-1, *([1] * (rms.dim() - 1)))


def truncated_energy(v: torch.Tensor, plan: SubsetPlan, order: int) -> torch.Tensor:
    """E_k = sum over ``|S| <= k`` of V(S): the k-body truncated expansion (eV).

    With k = N this is the total energy of the cluster.
    """
    if order > plan.max_order:
        raise ValueError(f"cannot truncate at order {order}: the plan stops at {plan.max_order}")
    keep = (plan.orders <= order).to(v.device)
    return v[keep].sum(0)


def _order_counts(plan: SubsetPlan, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([plan.count(m) for m in range(plan.max_order + 1)], dtype=like.dtype)
