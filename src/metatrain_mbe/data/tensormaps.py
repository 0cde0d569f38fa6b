"""The ``mbe_energy`` and ``mbe_summary`` TensorMaps (see ``docs/expansion.md``).

``mbe_energy``: keys ``order`` = 1..N (bodies); samples ``(system, subcluster)``
— the parent's ``mbe_parent`` id and the bitmask of the bodies in S (its atoms,
or its fragments when the parent declares ``mbe_fragment``); one property
``energy``; values V(S) in eV; a ``positions`` gradient with samples
``(sample, system, atom)`` and component ``xyz``: dV(S)/dr_atom in eV/Å.

``mbe_summary``: keys ``order`` = 2..N; samples ``system``; properties
``quantity`` 0 = Ṽ^(m) (Eq. 7, eV per body) and 1 = |dṼ^(m)/dr| (Eq. 8, eV/Å;
NaN without gradients).

Both are float64 and hold every parent of a list of
:class:`~metatrain_mbe.expansion.BodyOrderTerms`.
"""

from __future__ import annotations

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap

from ..expansion import BodyOrderTerms

__all__ = ["mbe_energy_map", "mbe_summary_map"]

# subcluster bitmasks go into int32 Labels
_MAX_LABEL_BODIES = 31


def mbe_energy_map(terms: list[BodyOrderTerms]) -> TensorMap:
    """Per-sub-cluster V(S) (eV) and dV(S)/dr (eV/Å) of every parent."""
    _check(terms)
    with_gradients = all(t.dv is not None for t in terms)
    max_order = max(t.plan.max_order for t in terms)
    blocks = []
    for order in range(1, max_order + 1):
        samples: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        grad_samples: list[torch.Tensor] = []
        grad_values: list[torch.Tensor] = []
        for t in terms:
            if order > t.plan.max_order:
                continue
            rows = torch.nonzero(t.plan.orders == order).flatten()
            masks = t.plan.masks[rows].cpu()
            system = torch.full_like(masks, t.system)
            offset = sum(s.shape[0] for s in samples)
            samples.append(torch.stack([system, masks], dim=1))
            values.append(t.v[rows].detach().cpu())
            if with_gradients:
                member = t.plan.atom_membership()[rows].cpu()
                sub, atom = torch.nonzero(member, as_tuple=True)
                grad_samples.append(
                    torch.stack([sub + offset, torch.full_like(sub, t.system), atom], dim=1)
                )
                assert t.dv is not None  # with_gradients
                grad_values.append(t.dv[rows].detach().cpu()[sub, atom])
        block = TensorBlock(
            values=torch.cat(values).to(torch.float64).reshape(-1, 1),
            samples=Labels(["system", "subcluster"], torch.cat(samples).to(torch.int32)),
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
    """Per-parent Ṽ^(m) (eV per body) and |dṼ^(m)/dr| (eV/Å) for m >= 2."""
    _check(terms)
    max_order = max(t.plan.max_order for t in terms)
    summaries = [(t, _summary(t)) for t in terms]
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
                properties=Labels(["quantity"], torch.tensor([[0], [1]], dtype=torch.int32)),
            )
        )
        keys.append(order)
    return TensorMap(
        Labels(["order"], torch.tensor(keys, dtype=torch.int32).reshape(-1, 1)), blocks
    )


def _summary(t: BodyOrderTerms) -> torch.Tensor:
    """``(max_order, 2)``: Ṽ^(m) and |dṼ^(m)/dr| (NaN without gradients)."""
    v_tilde = t.v_tilde()
    dv_tilde = t.dv_tilde() if t.dv is not None else torch.full_like(v_tilde, float("nan"))
    return torch.stack([v_tilde, dv_tilde], dim=1).to(torch.float64).cpu()


def _check(terms: list[BodyOrderTerms]) -> None:
    if not terms:
        raise ValueError("no parent to put in a TensorMap")
    for t in terms:
        if t.plan.n_bodies > _MAX_LABEL_BODIES:
            raise ValueError(
                f"parent {t.system} has {t.plan.n_bodies} bodies: sub-cluster bitmasks of more "
                f"than {_MAX_LABEL_BODIES} bodies do not fit in metatensor's int32 labels"
            )
