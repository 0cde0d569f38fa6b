"""Per-order statistics of body-ordered terms over parents, per group.

The numbers behind ``report.json``: mean and standard deviation over parents of
Ṽ^(m) (Eq. 7, eV/atom) and |dṼ^(m)/dr| (Eq. 8, eV/Å), for every parent and
for each value of a grouping info key (e.g. a density ``regime``).
"""

from __future__ import annotations

import ase
import torch

from ..data.io import PARENT_KEY, SOURCE_KEY
from ..errors import MBEInputError
from ..expansion import BodyOrderTerms

__all__ = ["ALL", "group_terms", "order_statistics", "statistics_section"]

#: name of the group that holds every parent
ALL = "all"


def group_terms(
    terms: list[BodyOrderTerms], infos: dict[int, dict], key: str | None
) -> dict[str, list[BodyOrderTerms]]:
    """Split ``terms`` by the parent info value of ``key`` (plus :data:`ALL`).

    :param infos: ``info`` dict of each parent, by ``mbe_parent`` id.
    """
    groups = {ALL: list(terms)}
    if key is None:
        return groups
    for t in terms:
        info = infos[t.system]
        if key not in info:
            where = info.get(SOURCE_KEY, f"parent {t.system}")
            raise MBEInputError(f"{where} (mbe_parent={t.system}): field '{key}' is missing")
        groups.setdefault(str(info[key]), []).append(t)
    return groups


def order_statistics(terms: list[BodyOrderTerms]) -> dict:
    """Mean and standard deviation over parents, for each order m >= 2.

    :return: ``{"n_parents": P, "orders": {"2": {"V_tilde": {"mean", "std"},
        "dV_tilde": {...}}, ...}}``; parents smaller than an order do not
        count for it, and ``dV_tilde`` is left out without gradients;
        ``V_tilde`` and ``dV_tilde`` are left out for an order that screening
        thins, ``energy_per_body`` (sum of the kept V(S) / N) is always there.
    """
    orders: dict[str, dict] = {}
    max_order = max(t.plan.max_order for t in terms)
    v_tilde = [t.v_tilde() for t in terms]
    dv_tilde = [t.dv_tilde() if t.dv is not None else None for t in terms]
    for m in range(2, max_order + 1):
        rows = [k for k, t in enumerate(terms) if m <= t.plan.max_order]
        entry: dict = {"n_parents": len(rows)}
        if all(terms[k].plan.is_full(m) for k in rows):
            entry["V_tilde"] = _stats([v_tilde[k][m - 1] for k in rows])
            gradients = [dv_tilde[k] for k in rows]
            if all(dv is not None for dv in gradients):
                entry["dV_tilde"] = _stats([dv[m - 1] for dv in gradients if dv is not None])
        entry["energy_per_body"] = _stats([terms[k].per_body()[m - 1] for k in rows])
        orders[str(m)] = entry
    return {"n_parents": len(terms), "orders": orders}


def _stats(values: list[torch.Tensor]) -> dict[str, float]:
    x = torch.stack(values).to(torch.float64)
    return {"mean": float(x.mean()), "std": float(x.std(unbiased=False))}


def statistics_section(
    terms: list[BodyOrderTerms], parents: dict[int, ase.Atoms], group_by: str | None
) -> dict:
    """The ``model`` / ``reference`` section of ``report.json``: the parent ids
    and the per-order statistics of ``terms`` for all parents and per group."""
    infos = {pid: atoms.info for pid, atoms in parents.items()}
    groups = group_terms(terms, infos, group_by)
    return {
        "parents": sorted(int(p.info[PARENT_KEY]) for p in parents.values()),
        "groups": {name: order_statistics(members) for name, members in groups.items()},
    }
