"""The ``mbe_energy`` and ``mbe_summary`` TensorMaps (see ``docs/expansion.md``).

``mbe_energy``: keys ``order`` = 1..K (bodies); samples ``(system, body_1, ...,
body_K)`` — the parent's ``mbe_parent`` id and the ascending body indices of S
in the parent (its atoms, or its fragments when the parent declares
``mbe_fragment``), K being the largest order of the map: metatensor gives all
blocks the same sample names, so in the block of order m the entries
``body_(m+1)`` .. ``body_K`` are -1. One property ``energy``; values V(S) in
eV; a ``positions`` gradient with samples ``(sample, system, atom)`` and
component ``xyz``: dV(S)/dr_atom in eV/Å for every atom of S.

``mbe_summary``: keys ``order`` = 2..K; samples ``system``; properties
``quantity`` 0 = Ṽ^(m) (Eq. 7, eV per body), 1 = |dṼ^(m)/dr| (Eq. 8, eV/Å),
both NaN for an order that screening thins (and 1 without gradients),
2 = the number of kept sub-clusters of the order, 3 = the m-body energy per
body, the sum of V(S) over the kept S divided by N (eV per body).

Both are float64 and hold every parent of a list of
:class:`~metatrain_mbe.expansion.BodyOrderTerms`.
"""

from __future__ import annotations

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap

from ..expansion import BodyOrderTerms

__all__ = ["SUMMARY_QUANTITIES", "mbe_energy_map", "mbe_summary_map"]

#: the ``quantity`` properties of ``mbe_summary``, in order
SUMMARY_QUANTITIES = ("V_tilde", "dV_tilde", "kept", "energy_per_body")


def mbe_energy_map(terms: list[BodyOrderTerms]) -> TensorMap:
    """Per-sub-cluster V(S) (eV) and dV(S)/dr (eV/Å) of every parent."""
    _check(terms)
    with_gradients = all(t.dv is not None for t in terms)
    max_order = max(t.plan.max_order for t in terms)
    names = ["system", *(f"body_{j + 1}" for j in range(max_order))]
    blocks = []
    for order in range(1, max_order + 1):
        samples: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        grad_samples: list[torch.Tensor] = []
        grad_values: list[torch.Tensor] = []
        offset = 0
        for t in terms:
            if order > t.plan.max_order:
                continue
            members = t.plan.members[order].cpu()
            padded = torch.full((len(members), max_order), -1, dtype=torch.int64)
            padded[:, :order] = members
            system = torch.full((len(members), 1), t.system, dtype=torch.int64)
            samples.append(torch.cat([system, padded], 1))
            positions = t.plan.positions(order).cpu()
            values.append(t.v[positions].detach().cpu())
            if with_gradients:
                subset, atom, start = (x.cpu() for x in t.plan.atom_rows())
                rows = torch.arange(int(start[positions[0]]), int(start[positions[-1] + 1]))
                local = subset[rows] - positions[0] + offset
                grad_samples.append(
                    torch.stack([local, torch.full_like(local, t.system), atom[rows]], dim=1)
                )
                assert t.dv is not None  # with_gradients
                grad_values.append(t.dv[rows].detach().cpu())
            offset += len(members)
        block = TensorBlock(
            values=torch.cat(values).to(torch.float64).reshape(-1, 1),
            samples=Labels(names, torch.cat(samples).to(torch.int32)),
            components=[],
            properties=Labels(["energy"], torch.tensor([[0]], dtype=torch.int32)),
        )
        if with_gradients:
            block.add_gradient(
                "positions",
                TensorBlock(
                    values=torch.cat(grad_values).to(torch.float64).reshape(-1, 3, 1),
                    samples=Labels(
                        ["sample", "system", "atom"], torch.cat(grad_samples).to(torch.int32)
                    ),
                    components=[Labels(["xyz"], torch.arange(3, dtype=torch.int32).reshape(-1, 1))],
                    properties=block.properties,
                ),
            )
        blocks.append(block)
    keys = Labels(["order"], torch.arange(1, max_order + 1, dtype=torch.int32).reshape(-1, 1))
    return TensorMap(keys, blocks)


def mbe_summary_map(terms: list[BodyOrderTerms]) -> TensorMap:
    """Per-parent Ṽ^(m), |dṼ^(m)/dr|, kept count and m-body energy per body,
    for m >= 2 (see :data:`SUMMARY_QUANTITIES`)."""
    _check(terms)
    max_order = max(t.plan.max_order for t in terms)
    summaries = [(t, _summary(t)) for t in terms]
    quantities = torch.arange(len(SUMMARY_QUANTITIES), dtype=torch.int32).reshape(-1, 1)
    keys, blocks = [], []
    for order in range(2, max_order + 1):
        rows = [(t, s[order - 1]) for t, s in summaries if order <= t.plan.max_order]
        if not rows:
            continue
        values = torch.stack([s for _, s in rows])
        systems = torch.tensor([[t.system] for t, _ in rows], dtype=torch.int32)
        blocks.append(
            TensorBlock(
                values=values,
                samples=Labels(["system"], systems),
                components=[],
                properties=Labels(["quantity"], quantities),
            )
        )
        keys.append(order)
    return TensorMap(
        Labels(["order"], torch.tensor(keys, dtype=torch.int32).reshape(-1, 1)), blocks
    )


def _summary(t: BodyOrderTerms) -> torch.Tensor:
    """``(max_order, 4)``: the :data:`SUMMARY_QUANTITIES` of each order."""
    v_tilde = t.v_tilde()
    dv_tilde = t.dv_tilde() if t.dv is not None else torch.full_like(v_tilde, float("nan"))
    kept = torch.tensor(
        [t.plan.kept(m) for m in range(1, t.plan.max_order + 1)], dtype=v_tilde.dtype
    )
    columns = [v_tilde, dv_tilde.to(v_tilde.device), kept.to(v_tilde.device), t.per_body()]
    return torch.stack(columns, dim=1).to(torch.float64).cpu()


def _check(terms: list[BodyOrderTerms]) -> None:
    if not terms:
        raise ValueError("no parent to put in a TensorMap")
