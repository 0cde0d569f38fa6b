"""A chemiscope view of the analysed parents: one structure per parent, with
its body-ordered terms per order m as properties and its m-body forces as arrows.

Properties (one value per parent, for every order m of the analysis):

- ``V_tilde[m=M] model``, ``... reference`` and ``... difference`` (model −
  reference): Ṽ^(m) = Σ_{|S|=m} V(S) / (C(N,m)·m), paper Eq. 7, in eV per body
  (eV/atom, or eV/molecule when the parents declare molecules);
- ``|dV_tilde/dr|[m=M] model``, ``... reference``, ``... difference``: the mean
  over |S| = m of the RMS over the atoms of S of |dV(S)/dr_i|, Eq. 8, in eV/Å;
- ``parent`` (``mbe_parent`` id), ``bodies`` (N) and the scalar ``info``
  entries every parent has (e.g. ``regime``).

The model's Ṽ^(m) use its own E_1 (as ``per_parent`` of ``report.json``). A
value is NaN where a parent lacks it (no labels, a thinner plan, an order
screened by ``--cutoff``); a property that no parent has is left out.

Shapes ``F[m=M] model`` and ``F[m=M] reference``, M ≥ 2: per atom, the m-body
force F_i^(m) = −Σ_{|S|=m} dV(S)/dr_i (eV/Å; the kept sub-clusters where the
plan is screened), drawn as an arrow of ``scale`` Å per eV/Å. Summed over m
they give the force of the (truncated) expansion on each atom; for a pair
potential F^(2) is the whole force and F^(m ≥ 3) vanish.

The settings follow metatrain's parity-plot example: the map plots the
reference's Ṽ^(m) against the model's for the chosen m, the viewer shows the
model's m-body forces of that m, without atom-centred environments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from numbers import Real
from pathlib import Path

import ase
import torch

from ... import __version__
from ...analysis import ParentResult
from ...analysis.diagnostics import units
from ...compute.export import REFERENCES
from ...data.io import PARENT_KEY
from ...expansion import BodyOrderTerms

__all__ = [
    "ARROW_LENGTH",
    "DEFAULT_ARROW_ORDER",
    "chemiscope_input",
    "m_body_forces",
    "write_chemiscope",
]

LOGGER = logging.getLogger(__name__)

#: body order m whose m-body forces the viewer shows first
DEFAULT_ARROW_ORDER = 2
#: length (Å) of the longest arrow of the shown order, by default
ARROW_LENGTH = 1.0
#: radius of an arrow's stem (Å); its head is 1.75 times wider and 2 times longer
ARROW_RADIUS = 0.1
#: decimals (Å) of the arrows' components: far below what a viewer shows
ARROW_DECIMALS = 4
#: arrow colour of each source (the figures' colours)
COLORS = {"model": "#1f77b4", "reference": "#000000"}


def m_body_forces(terms: BodyOrderTerms) -> torch.Tensor:
    """``(max_order, n_atoms, 3)``: the m-body force on each atom of the parent,
    F_i^(m) = −Σ_{|S|=m} dV(S)/dr_i (eV/Å), for m = 1 .. max_order (index 0 is
    m = 1), over the sub-clusters the plan keeps.

    :raises ValueError: when ``terms`` has no gradients.
    """
    if terms.dv is None:
        raise ValueError(f"parent {terms.system} has no gradients")
    plan = terms.plan
    subset, atom, _ = plan.atom_rows()
    orders = plan.orders[subset].to(terms.dv.device)
    forces = torch.zeros(
        (plan.max_order + 1, plan.n_atoms, 3), dtype=terms.dv.dtype, device=terms.dv.device
    )
    forces.index_put_((orders, atom.to(terms.dv.device)), -terms.dv, accumulate=True)
    return forces[1:]


def write_chemiscope(
    path: Path,
    results: Sequence[ParentResult],
    *,
    arrow_order: int = DEFAULT_ARROW_ORDER,
    arrow_scale: float | None = None,
    source: str = "",
    authors: Sequence[str] = (),
) -> Path | None:
    """Write the chemiscope dataset of :func:`chemiscope_input` to ``path``
    (``.json`` or ``.json.gz``); ``None`` (nothing written) without chemiscope
    or without a parent."""
    try:
        import chemiscope
    except ImportError:
        LOGGER.info("chemiscope is not installed: no chemiscope view written")
        return None
    if not results:
        return None
    data = chemiscope_input(
        results, arrow_order=arrow_order, arrow_scale=arrow_scale, source=source, authors=authors
    )
    chemiscope.write_input(str(path), **data)
    return path


def chemiscope_input(
    results: Sequence[ParentResult],
    *,
    arrow_order: int = DEFAULT_ARROW_ORDER,
    arrow_scale: float | None = None,
    source: str = "",
    authors: Sequence[str] = (),
) -> dict:
    """The arguments of ``chemiscope.write_input`` (``structures``,
    ``properties``, ``shapes``, ``settings``, ``metadata``) for ``results``,
    one structure per parent (see the module's docstring).

    :param results: the model's per-parent results, with their reference sets
        where labelled (at least one).
    :param arrow_order: the order m ≥ 2 whose m-body forces (and Ṽ^(m) on the
        map) are shown first; the largest order analysed when no parent reaches
        it. Every order's arrows are in the dataset (the viewer's shape menu).
    :param arrow_scale: arrow length per force (Å per eV/Å), the same for every
        order and source; default: the longest arrow of ``arrow_order`` is
        :data:`ARROW_LENGTH` Å.
    :param source: what was analysed (e.g. ``"model: model.pt, data: test.xyz"``),
        for the description.
    :param authors: the dataset's authors, before the package that made it.
    :raises ValueError: for ``arrow_order`` < 2, or no result.
    """
    if arrow_order < 2:
        raise ValueError(f"arrow_order must be a body order of at least 2, got {arrow_order}")
    if not results:
        raise ValueError("no parent to show")
    parents = [r.parent for r in results]
    per_body = units(parents)["V_tilde"]
    terms: dict[str, list[BodyOrderTerms | None]] = {
        "model": [r.terms for r in results],
        "reference": [None if r.reference is None else r.reference.terms() for r in results],
    }
    properties: dict[str, dict] = {
        "parent": _structure([r.parent_id for r in results], "", "mbe_parent id"),
        "bodies": _structure(
            [r.plan.n_bodies for r in results], "", "number of bodies N of the parent"
        ),
    }
    properties.update(_info_properties(parents, set(properties)))
    max_order = max(r.plan.max_order for r in results)
    molecules = not all(r.plan.is_atomic for r in results)
    v_tilde = {name: [_per_order(t, False) for t in sources] for name, sources in terms.items()}
    dv_tilde = {name: [_per_order(t, True) for t in sources] for name, sources in terms.items()}
    for m in range(1, max_order + 1):
        properties.update(_order_properties(v_tilde, m, "V_tilde", per_body, "Ṽ^(m), Eq. 7"))
        if m > 1 or molecules:  # one atom alone feels no force
            properties.update(
                _order_properties(dv_tilde, m, "|dV_tilde/dr|", "eV/Å", "|dṼ^(m)/dr|, Eq. 8")
            )
    forces = {
        name: [None if t is None or t.dv is None else m_body_forces(t) for t in sources]
        for name, sources in terms.items()
    }
    forces = {name: f for name, f in forces.items() if any(x is not None for x in f)}
    shown = min(arrow_order, max_order)
    if shown != arrow_order:
        LOGGER.info("no parent has order %d: the view shows order %d", arrow_order, shown)
    if arrow_scale is None:
        arrow_scale = ARROW_LENGTH / _largest(forces, shown) if shown >= 2 else 1.0
    shapes = {
        f"F[m={m}] {name}": _arrows(per_parent, m, arrow_scale, COLORS[name], results)
        for m in range(2, max_order + 1)
        for name, per_parent in forces.items()
    }
    frames = [ase.Atoms(p.numbers, positions=p.positions, cell=p.cell, pbc=p.pbc) for p in parents]
    return {
        "structures": frames,
        "properties": {name: p for name, p in properties.items() if _has_values(p)},
        "shapes": shapes or None,
        "settings": _settings(properties, shapes, shown, any(p.pbc.any() for p in parents)),
        "metadata": _metadata(len(results), shown, arrow_scale, per_body, source, authors),
    }


def _structure(values: list, units_: str, description: str) -> dict:
    """A structure property in chemiscope's format (no units for a plain number)."""
    prop = {"target": "structure", "values": values, "description": description}
    return {**prop, "units": units_} if units_ else prop


def _info_properties(parents: list, taken: set[str]) -> dict[str, dict]:
    """The scalar ``info`` entries (numbers, or strings) that every parent has,
    but the reader's own (``_source``)."""
    keys = set.intersection(*(set(p.info) for p in parents)) - {PARENT_KEY} - taken
    found = {}
    for key in sorted(k for k in keys if not k.startswith("_")):  # _source: the file read
        values = [p.info[key] for p in parents]
        numbers = all(isinstance(v, Real) and not isinstance(v, bool) for v in values)
        if numbers or all(isinstance(v, str) for v in values):
            found[key] = _structure(values, "", f"info['{key}'] of the parent")
    return found


def _per_order(terms: BodyOrderTerms | None, gradients: bool) -> list[float] | None:
    """Ṽ^(m) (or, with ``gradients``, |dṼ^(m)/dr|) for m = 1 .. max_order;
    None without terms (or gradients)."""
    if terms is None or (gradients and terms.dv is None):
        return None
    return (terms.dv_tilde() if gradients else terms.v_tilde()).tolist()


def _order_properties(
    per_order: dict[str, list[list[float] | None]],
    m: int,
    quantity: str,
    units_: str,
    meaning: str,
) -> dict[str, dict]:
    """``{quantity}[m=M] model``, ``... reference`` and ``... difference`` (model
    − reference) of every parent (NaN where a parent has no value), from each
    source's per-order values of each parent (index 0 is m = 1)."""
    values = {
        name: [math.nan if v is None or m > len(v) else v[m - 1] for v in per_parent]
        for name, per_parent in per_order.items()
    }
    values["difference"] = [a - b for a, b in zip(values["model"], values["reference"])]
    described = {
        "model": f"{meaning} of the model (its own E_1)",
        "reference": f"{meaning} of the reference labels",
        "difference": f"{meaning}: model − reference",
    }
    return {
        f"{quantity}[m={m}] {name}": _structure(values[name], units_, f"{described[name]}, m = {m}")
        for name in values
    }


def _has_values(prop: dict) -> bool:
    """Whether a property has a value for some parent (not all NaN)."""
    return any(not (isinstance(v, float) and math.isnan(v)) for v in prop["values"])


def _largest(forces: dict[str, list[torch.Tensor | None]], m: int) -> float:
    """The largest |F_i^(m)| (eV/Å) over the sources and parents; 1 when none."""
    norms = [
        float(torch.linalg.vector_norm(f[m - 1], dim=-1).max())
        for per_parent in forces.values()
        for f in per_parent
        if f is not None and m <= len(f)
    ]
    largest = max(norms, default=0.0)
    return largest if math.isfinite(largest) and largest > 0 else 1.0


def _arrows(
    per_parent: list[torch.Tensor | None],
    m: int,
    scale: float,
    color: str,
    results: Sequence[ParentResult],
) -> dict:
    """The arrow shape of the m-body forces, one arrow per atom of every parent
    (zero where a parent has no order m or no gradients), as
    ``chemiscope.ase_vectors_to_arrows`` makes them, to :data:`ARROW_DECIMALS`."""
    vectors = []
    for f, r in zip(per_parent, results):
        if f is None or m > len(f):
            f_m = torch.zeros((len(r.parent), 3), dtype=torch.float64)
        else:
            f_m = f[m - 1]
        vectors += [{"vector": [round(scale * x, ARROW_DECIMALS) for x in v]} for v in f_m.tolist()]
    style = {
        "baseRadius": ARROW_RADIUS,
        "headRadius": 1.75 * ARROW_RADIUS,
        "headLength": 2.0 * ARROW_RADIUS,
        "color": color,
    }
    return {"kind": "arrow", "parameters": {"global": style, "atom": vectors}}


def _settings(properties: dict, shapes: dict, m: int, periodic: bool) -> dict:
    """The settings of metatrain's parity-plot example: reference against model
    on the map (Ṽ^(m) of order ``m``), coloured by the error of |dṼ^(m)/dr|,
    the model's m-body forces in the viewer, no environments."""
    import chemiscope

    def first(*names: str) -> str | None:
        return next((n for n in names if n in properties and _has_values(properties[n])), None)

    v, dv = f"V_tilde[m={m}]", f"|dV_tilde/dr|[m={m}]"
    x: str | None
    y: str | None
    if first(f"{v} reference") and first(f"{v} model"):
        x, y, color = f"{v} reference", f"{v} model", first(f"{dv} difference", f"{v} difference")
    else:
        x, y, color = first(f"{v} model"), first(f"{dv} model"), None
    shape = next((n for n in (f"F[m={m}] model", f"F[m={m}] reference") if n in shapes), None)
    structure: dict[str, object] = {"unitCell": periodic, "environments": {"activated": False}}
    if shape is not None:
        structure["shape"] = shape
    return chemiscope.quick_settings(
        x=x,
        y=y,
        map_color=color,
        trajectory=True,
        map_settings={"joinPoints": False},
        structure_settings=structure,
    )


def _metadata(
    n_parents: int, m: int, scale: float, per_body: str, source: str, authors: Sequence[str]
) -> dict:
    """Name, description, authors and references of the dataset."""
    analysed = f" Analysed: {source}." if source else ""
    return {
        "name": "Many-body expansion: body-ordered terms per parent",
        "description": (
            f"One structure per parent ({n_parents}).{analysed} Properties per body order m: "
            f"V_tilde[m] = Ṽ^(m) = Σ_{{|S|=m}} V(S) / (C(N,m)·m) ({per_body}, Eq. 7 of Chong "
            "et al.) and |dV_tilde/dr|[m] = |dṼ^(m)/dr|, the mean over |S| = m of the RMS "
            "over the atoms of S of |dV(S)/dr_i| (eV/Å, Eq. 8), of the model, of the "
            "reference labels and their difference (model − reference). The model's Ṽ^(m) "
            "use its own isolated-atom energy E_1: a model E_1 off by δ adds (−1)^(m−1)·δ to "
            "the difference (one species); |dṼ^(m)/dr| does not depend on E_1. Shapes "
            "F[m=M]: the M-body force on each atom, −Σ_{|S|=M} dV(S)/dr_i (eV/Å), drawn "
            f"{scale:.4g} Å per eV/Å (shown first: m = {m}; others in the shape menu). "
            "The terms V(S) of every sub-cluster are in model/mbe_energy.mts and "
            "reference/mbe_energy.mts."
        ),
        "authors": [*authors, f"generated with metatrain-mbe {__version__} (mtt-mbe analyze)"],
        "references": list(REFERENCES),
    }
