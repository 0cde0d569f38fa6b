"""The numbers of the MBE reports, one function per section of ``report.json``
besides the per-order statistics (:mod:`.statistics`).

The model sections take the per-parent results of :func:`.model.model_results`;
those of a reference-only analysis (:func:`reference_per_parent`,
:func:`labelled_dimers`) the labelled terms; :func:`report_flags` reads a
finished report. All return plain JSON-able dicts. Units: energies eV, Ṽ
eV per body (eV/atom, or eV/molecule when the parents declare fragments),
gradients and forces eV/Å, distances Å.

The isolated-atom sections (E_1 check, baselines) concern single-atom bodies
only: a molecule's one-body term is its own energy in the parent geometry,
which the per-order RMSE (order 1) compares.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import ase
import numpy as np
import torch
from ase.data import chemical_symbols

from ..compute.protocol import Evaluator
from ..data.io import FRAGMENT_KEY, PARENT_KEY
from ..data.subclusters import bodies_of, parent_plan
from ..expansion import BodyOrderTerms, SubsetPlan, truncated_energy

if TYPE_CHECKING:
    from .model import ParentResult

__all__ = [
    "E1_TOLERANCE",
    "EPS_FLOAT32",
    "MIN_PARENTS",
    "UNDERTRAINED_RATIO",
    "baselines",
    "dimer_curves",
    "e1_check",
    "effective_e1",
    "family",
    "labelled_dimers",
    "model_e1",
    "one_body_terms",
    "order_rmse",
    "per_parent",
    "precision",
    "reference_per_parent",
    "report_flags",
    "soap_distances",
    "terms_with_e1",
    "units",
    "with_e1",
]

#: largest |model E_1 - reference E_1| (eV) a report accepts without a warning
E1_TOLERANCE = 0.010

#: machine epsilon of float32
EPS_FLOAT32 = float(torch.finfo(torch.float32).eps)

#: fewest parents per group whose mean and standard deviation a report does
#: not flag as rough
MIN_PARENTS = 10

#: largest RMSE of the model's E(S) per atom, as a fraction of the standard deviation
#: of the reference E(S) per atom, at the largest labelled order, that a report does not
#: flag as undertrained (see :func:`report_flags`)
UNDERTRAINED_RATIO = 0.5


def units(parents: list[ase.Atoms]) -> dict[str, str]:
    """The ``units`` section of a report: what a body is (``atoms``, or
    ``molecules`` when the parents declare fragments) and the unit of each
    quantity (Ṽ^(m) per body)."""
    molecules = any(FRAGMENT_KEY in p.arrays for p in parents)
    return {
        "bodies": "molecules" if molecules else "atoms",
        "V_tilde": "eV/molecule" if molecules else "eV/atom",
        "dV_tilde": "eV/Angstrom",
        "e1": "eV",
    }


def _single_atoms(plan: SubsetPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of the one-atom sub-clusters (single-atom bodies) and the atom each holds."""
    rows = torch.nonzero((plan.orders == 1) & (plan.atom_counts() == 1)).flatten()
    atoms = torch.tensor([plan.atoms_in(row)[0] for row in rows.tolist()], dtype=torch.long)
    return rows, atoms


def _single_atom_species(r: ParentResult) -> set[int]:
    """Atomic numbers of the parent's single-atom bodies (those E_1 applies to)."""
    _, atoms = _single_atoms(r.plan)
    return {int(r.parent.numbers[a]) for a in atoms.tolist()}


def model_e1(results: list[ParentResult]) -> dict[str, float]:
    """The model's own isolated-atom energies (eV by symbol): its E(S) of the
    one-atom sub-clusters."""
    found: dict[str, list[float]] = {}
    for r in results:
        rows, atoms = _single_atoms(r.plan)
        for row, atom in zip(rows.tolist(), atoms.tolist()):
            found.setdefault(r.parent[atom].symbol, []).append(float(r.energies[row]))
    return {symbol: sum(v) / len(v) for symbol, v in sorted(found.items())}


def with_e1(
    energies: torch.Tensor, plan: SubsetPlan, numbers, e1: dict[int, float]
) -> torch.Tensor:
    """``energies`` with the one-atom sub-clusters set to ``e1`` (eV by atomic number)."""
    out = energies.clone()
    rows, atoms = _single_atoms(plan)
    out[rows] = torch.tensor([e1[int(numbers[a])] for a in atoms.tolist()], dtype=out.dtype)
    return out


def effective_e1(energies: torch.Tensor, plan: SubsetPlan, numbers) -> dict[int, float]:
    """The "effective" E_1 of appendix C (eV by atomic number): the least-squares
    fit of E(S) ≈ Σ_{i∈S} E_1(Z_i) over the sub-clusters with at least two atoms,
    which zeroes the linear (cohesive, m·ε) term behind the alternating trend."""
    numbers = torch.as_tensor(numbers)
    species = sorted(set(numbers.tolist()))
    rows = plan.orders >= 2
    subset, atom, _ = plan.atom_rows()
    kind = torch.searchsorted(torch.tensor(species), numbers)[atom]
    composition = torch.zeros((plan.n_subsets, len(species)), dtype=torch.float64)
    composition.index_put_((subset, kind), torch.ones(len(atom), dtype=torch.float64), True)
    composition = composition[rows]
    fit = torch.linalg.lstsq(composition, energies[rows].unsqueeze(1).to(torch.float64))
    return {z: float(e) for z, e in zip(species, fit.solution.flatten())}


def _mean_by_order(values: list[torch.Tensor]) -> dict[str, float]:
    """Mean over parents of per-order values (index 0 is m = 1), orders >= 2."""
    out: dict[str, float] = {}
    longest = max(len(v) for v in values)
    for m in range(2, longest + 1):
        column = [float(v[m - 1]) for v in values if len(v) >= m]
        out[str(m)] = sum(column) / len(column)
    return out


def _symbols(e1: dict[int, float]) -> dict[str, float]:
    return {chemical_symbols[z]: value for z, value in sorted(e1.items())}


def one_body_terms(
    parents: list[ase.Atoms],
    plans: list[SubsetPlan],
    reference: list[torch.Tensor | None],
    model: list[torch.Tensor] | None = None,
) -> dict:
    """The one-body terms of molecular bodies, per chemical formula: how many,
    the mean and spread of the labelled V({i}) = E({i}) (eV), and the model's
    mean and RMSE against them (eV). Single-atom bodies (E_1) are left out.

    :param reference: per parent, the labelled E(S) in plan order, or None.
    :param model: per parent, the model's E(S) in plan order.
    """
    found: dict[str, dict[str, list[float]]] = {}
    for k, (parent, plan) in enumerate(zip(parents, plans)):
        labels = reference[k]
        singles = (plan.orders == 1) & (plan.atom_counts() > 1)
        for row in torch.nonzero(singles).flatten().tolist():
            formula = parent[plan.atoms_in(row)].get_chemical_formula()
            entry = found.setdefault(formula, {"reference": [], "model": []})
            if labels is not None:
                entry["reference"].append(float(labels[row]))
            if model is not None:
                entry["model"].append(float(model[k][row]))
    out = {}
    for formula, entry in sorted(found.items()):
        labelled = torch.tensor(entry["reference"], dtype=torch.float64)
        predicted = torch.tensor(entry["model"], dtype=torch.float64)
        summary: dict = {"n": max(len(labelled), len(predicted))}
        if len(labelled):
            summary["reference_mean"] = float(labelled.mean())
            summary["reference_std"] = float(labelled.std(unbiased=False))
        if len(predicted):
            summary["model_mean"] = float(predicted.mean())
        if len(labelled) and len(predicted) == len(labelled):
            summary["rmse"] = float((predicted - labelled).square().mean().sqrt())
        out[formula] = summary
    return out


def e1_check(results: list[ParentResult], reference_e1: dict[str, float]) -> dict:
    """The model's own E_1 against the reference (eV by symbol), and a warning
    when they differ by more than :data:`E1_TOLERANCE`.

    A model E_1 off by δ shifts every V(S) of m atoms of one species by
    (-1)^(m-1)·m·δ, so Ṽ^(m) by (-1)^(m-1)·δ at every order (appendix C of
    Chong et al. 2026): the report compares model and reference with the same
    (reference) E_1, and |dṼ^(m)/dr| does not depend on E_1 at all.
    """
    own = model_e1(results)
    difference = {s: own[s] - reference_e1[s] for s in own if s in reference_e1}
    check: dict = {
        "model": own,
        "reference": dict(reference_e1),
        "difference": difference,
        "tolerance": E1_TOLERANCE,
    }
    off = {s: d for s, d in difference.items() if abs(d) > E1_TOLERANCE}
    if off:
        check["warning"] = (
            "the model's isolated-atom energy differs from the reference by "
            + ", ".join(f"{1000 * d:+.1f} meV ({s})" for s, d in off.items())
            + f" (more than {1000 * E1_TOLERANCE:.0f} meV): its own Ṽ^(m) are shifted by "
            "that much at every order"
        )
    return check


def terms_with_e1(results: list[ParentResult], e1: dict[str, float]) -> list[BodyOrderTerms] | None:
    """The model's terms with its one-atom energies replaced by ``e1`` (eV by
    symbol), gradients kept; None when ``e1`` misses a species of the parents."""
    by_number = {ase.data.atomic_numbers[s]: v for s, v in e1.items()}
    if any(not set(r.parent.numbers.tolist()) <= set(by_number) for r in results):
        return None
    return [
        BodyOrderTerms.from_energies(
            r.parent_id,
            r.plan,
            with_e1(r.energies, r.plan, r.parent.numbers, by_number),
            r.gradients,
        )
        for r in results
    ]


def baselines(results: list[ParentResult], reference_e1: dict[str, float]) -> dict:
    """Ṽ^(m) with each E_1 baseline: the reference's, the model's own, and the
    effective one (per parent), for the model and, where labelled, the reference.
    Parents whose bodies are fragments have no E_1 baseline and are left out."""
    own = {ase.data.atomic_numbers[s]: v for s, v in model_e1(results).items()}
    given = {ase.data.atomic_numbers[s]: v for s, v in reference_e1.items()}
    v_tilde: dict[str, dict[str, list[torch.Tensor]]] = {"model": {}, "reference": {}}
    effective: dict[str, list[dict[int, float]]] = {"model": [], "reference": []}
    for r in results:
        if not r.plan.is_atomic:
            continue
        numbers = r.parent.numbers
        sources = {"model": r.energies}
        if r.reference is not None:
            sources["reference"] = r.reference.energies
        for source, energies in sources.items():
            fitted = effective_e1(energies, r.plan, numbers) if r.plan.max_order >= 2 else None
            options = {"model": own, "reference": given, "effective": fitted}
            if fitted is not None:
                effective[source].append(fitted)
            for name, e1 in options.items():
                if e1 is None or not set(numbers.tolist()) <= set(e1):
                    continue
                shifted = BodyOrderTerms.from_energies(
                    r.parent_id, r.plan, with_e1(energies, r.plan, numbers, e1)
                )
                v_tilde[source].setdefault(name, []).append(shifted.v_tilde())
    return {
        "e1": {
            "reference": dict(reference_e1),
            "model": model_e1(results),
            **{
                f"effective_{source}": _symbols(_average(fits))
                for source, fits in effective.items()
                if fits
            },
        },
        "V_tilde": {
            source: {name: _mean_by_order(values) for name, values in by_name.items()}
            for source, by_name in v_tilde.items()
            if by_name
        },
    }


def _average(fits: list[dict[int, float]]) -> dict[int, float]:
    keys = sorted({z for fit in fits for z in fit})
    return {z: sum(f[z] for f in fits if z in f) / sum(z in f for f in fits) for z in keys}


def order_rmse(results: list[ParentResult]) -> dict:
    """RMSE of the model's E(S) (per atom, eV/atom) and forces (eV/Å, over
    components) on the labelled sub-clusters, per order m in bodies (m = N:
    the parents; m = 1: single molecules when the bodies are fragments).

    Each order also holds ``reference_std_per_atom``, the standard deviation of
    the reference E(S) per atom over the same sub-clusters (eV/atom): the RMSE of a
    model that predicts one constant energy per atom.
    """
    sums: dict[int, dict] = {}
    for r in results:
        if r.reference is None:
            continue
        sizes = r.plan.atom_counts().clamp(min=1)
        error = (r.energies - r.reference.energies) / sizes
        per_atom = r.reference.energies / sizes
        labelled = r.reference.gradients
        forces = labelled is not None
        if labelled is not None:
            subset = r.plan.atom_rows()[0]
            squares = torch.zeros(r.plan.n_subsets, dtype=torch.float64).index_add_(
                0, subset, (r.gradients - labelled).square().sum(-1)
            )
        for m in range(1, r.plan.max_order + 1):
            rows = r.plan.positions(m)
            entry = sums.setdefault(m, {"e2": 0.0, "f2": 0.0, "nf": 0, "reference": []})
            entry["e2"] += float(error[rows].square().sum())
            entry["reference"].extend(per_atom[rows].tolist())
            if forces:
                entry["f2"] += float(squares[rows].sum())
                entry["nf"] += 3 * int(sizes[rows].sum())
    out = {}
    for m, e in sorted(sums.items()):
        reference = torch.tensor(e["reference"], dtype=torch.float64)
        out[str(m)] = {
            "n_subclusters": len(reference),
            "energy_per_atom": math.sqrt(e["e2"] / len(reference)),
            "reference_std_per_atom": float(reference.std(unbiased=False)),
            **({"forces": math.sqrt(e["f2"] / e["nf"])} if e["nf"] else {}),
        }
    return out


def _pair_name(first: ase.Atoms, second: ase.Atoms) -> str:
    """``"A-B"``: the two bodies' chemical formulas (species for atoms), sorted."""
    return "-".join(sorted((first.get_chemical_formula(), second.get_chemical_formula())))


def _separation(first: ase.Atoms, second: ase.Atoms) -> float:
    """Distance between two bodies' centres of mass (Å): for atoms, their distance."""
    return float(((first.get_center_of_mass() - second.get_center_of_mass()) ** 2).sum() ** 0.5)


def _dimers(parent: ase.Atoms, plan: SubsetPlan):
    """``(pair "A-B", row, distance in Å)`` of each two-body sub-cluster: two
    atoms (species, their distance) or two fragments (formulas, the distance
    of their centres of mass)."""
    for row in plan.positions(2).tolist() if plan.max_order >= 2 else []:
        i, j = plan.bodies(row)
        first, second = parent[plan.atoms_in(1 + i)], parent[plan.atoms_in(1 + j)]
        yield _pair_name(first, second), row, _separation(first, second)


def labelled_dimers(terms: list[BodyOrderTerms], parents: dict[int, ase.Atoms]) -> dict:
    """The reference V^(2)(r) per pair of body kinds: ``{"A-B": {"r": [...] (Å),
    "reference": [...] (eV per dimer)}}`` over the two-body sub-clusters.

    :param parents: the parent of each term, by ``mbe_parent`` id.
    """
    out: dict[str, dict[str, list[float]]] = {}
    for t in terms:
        for name, row, distance in _dimers(parents[t.system], t.plan):
            entry = out.setdefault(name, {"r": [], "reference": []})
            entry["r"].append(distance)
            entry["reference"].append(float(t.v[row]))
    return dict(sorted(out.items()))


def _dimer_templates(parents: list[ase.Atoms]) -> dict[str, ase.Atoms]:
    """One two-body structure per pair of body kinds found in ``parents``
    (bodies as in their first parent; fragments keep ``mbe_fragment`` 0 and 1)."""
    templates: dict[str, ase.Atoms] = {}
    for parent in parents:
        bodies = [parent[atoms] for atoms in bodies_of(parent)]
        # the first pair (i < j) of each pair of kinds: linear in the bodies
        kinds: dict[str, list[int]] = {}
        for k, body in enumerate(bodies):
            kinds.setdefault(body.get_chemical_formula(), []).append(k)
        pairs: dict[str, tuple[int, int]] = {}
        for a, first_of in kinds.items():
            for b, second_of in kinds.items():
                later = next((j for j in second_of if j > first_of[0]), None)
                if later is not None:
                    pair = (first_of[0], later)
                    name = "-".join(sorted((a, b)))
                    pairs[name] = min(pairs.get(name, pair), pair)
        for name, (i, j) in sorted(pairs.items(), key=lambda item: item[1]):
            first, second = bodies[i], bodies[j]
            if name in templates:
                continue
            dimer = first + second
            if FRAGMENT_KEY in parent.arrays:
                dimer.arrays[FRAGMENT_KEY] = np.repeat([0, 1], [len(first), len(second)])
            templates[name] = dimer
    return templates


def _at_separation(dimer: ase.Atoms, distance: float) -> ase.Atoms:
    """``dimer`` with its second body moved along the line of the centres of
    mass so that they are ``distance`` Å apart."""
    bodies = bodies_of(dimer)
    first, second = dimer[bodies[0]], dimer[bodies[1]]
    axis = second.get_center_of_mass() - first.get_center_of_mass()
    shift = axis / np.linalg.norm(axis) * distance - axis
    moved = dimer.copy()
    moved.positions[bodies[1]] += shift
    return moved


def dimer_curves(results: list[ParentResult], evaluator: Evaluator, n_points: int = 80) -> dict:
    """V^(2)(r) per pair of body kinds (species, or fragment formulas): the
    labelled dimers (reference and model V(S) against distance, and the
    model's ``rmse`` on them, eV per dimer) and the model's curve on a grid of
    distances (fragments moved rigidly along the line of their centres of
    mass, from their geometry in the first parent holding that pair)."""
    observed: dict[str, dict[str, list[float]]] = {}
    largest = 0.0
    for r in results:
        largest = max(largest, float(r.parent.get_all_distances().max()))
        if r.reference is None or r.plan.max_order < 2:
            continue
        reference_v = r.reference.terms().v
        for name, row, distance in _dimers(r.parent, r.plan):
            entry = observed.setdefault(name, {"r": [], "reference": [], "model": []})
            entry["r"].append(distance)
            entry["reference"].append(float(reference_v[row]))
            entry["model"].append(float(r.terms.v[row]))
    cutoff = evaluator.cutoff or largest
    shortest = min((min(o["r"]) for o in observed.values()), default=0.5)
    grid = torch.linspace(max(0.3, 0.8 * shortest), max(cutoff, largest), n_points)
    out: dict[str, dict] = {}
    for name, template in sorted(_dimer_templates([r.parent for r in results]).items()):
        dimers = [_at_separation(template, float(x)) for x in grid]
        plan = parent_plan(template)
        evaluated = evaluator.evaluate(dimers, [plan] * len(dimers))
        curve = [float(BodyOrderTerms.from_energies(0, plan, e).v[3]) for e, _ in evaluated]
        out[name] = {"grid": {"r": grid.tolist(), "model": curve}}
        if name in observed:
            data = observed[name]
            errors = torch.tensor(data["model"], dtype=torch.float64) - torch.tensor(
                data["reference"], dtype=torch.float64
            )
            out[name].update(data, rmse=float(errors.square().mean().sqrt()))
    return out


def precision(results: list[ParentResult], dtype: torch.dtype) -> dict:
    """Round-off of V(S) and Ṽ^(m) expected from the model's precision.

    V(S) of order m is an alternating sum of 2^m energies E(T); with random
    round-off of relative size eps each, its noise is about
    eps · |E| · 2^(m/2), and Ṽ^(m), a mean over C(N, m) terms divided by m,
    about that / (m · sqrt(C(N, m))). ``|E|`` is the mean |E(S)| of order m.
    """
    eps = float(torch.finfo(dtype).eps)
    orders: dict[str, dict[str, float]] = {}
    max_order = max(r.plan.max_order for r in results)
    for m in range(2, max_order + 1):
        v_noise, tilde_noise = [], []
        for r in results:
            if r.plan.max_order < m:
                continue
            typical = float(r.energies[r.plan.orders == m].abs().mean())
            noise = eps * typical * 2 ** (m / 2)
            v_noise.append(noise)
            tilde_noise.append(noise / (m * math.sqrt(r.plan.kept(m))))
        orders[str(m)] = {
            "V": sum(v_noise) / len(v_noise),
            "V_tilde": sum(tilde_noise) / len(tilde_noise),
        }
    out = {"dtype": str(dtype).removeprefix("torch."), "eps": eps, "orders": orders}
    if dtype != torch.float64:
        worst = max(orders.values(), key=lambda o: o["V"]) if orders else {"V": 0.0}
        out["warning"] = (
            f"the model computes in {out['dtype']}: the analysis is float64 but each "
            f"E(S) carries round-off ~{eps:.1e}·|E|, so V(S) of the highest order is "
            f"uncertain by ~{worst['V']:.2e} eV (see the table per order)"
        )
    return out


def family(terms: list[BodyOrderTerms], totals: dict[int, float] | None = None) -> dict:
    """The kept sub-clusters and what they add up to, per order m (bodies).

    Per order: ``kept`` sub-clusters against ``possible`` (the sum over
    parents of C(N, m)), whether every parent keeps all of them
    (``complete``; Ṽ^(m) and |dṼ^(m)/dr| exist only then), the mean and std
    over parents of the m-body energy per body (sum of the kept V(S) / N, eV
    per body) and, with ``totals`` (the whole parents' energies in eV, by
    ``mbe_parent`` id), the truncation error |E_K - E| of K = m, mean over
    parents, in eV and in eV per body.
    """
    max_order = max(t.plan.max_order for t in terms)
    cutoffs = [t.plan.cutoffs.by_order for t in terms if t.plan.cutoffs]
    orders: dict[str, dict] = {}
    for m in range(1, max_order + 1):
        mine = [t for t in terms if t.plan.max_order >= m]
        entry: dict = {
            "n_parents": len(mine),
            "kept": sum(t.plan.kept(m) for t in mine),
            "possible": sum(t.plan.count(m) for t in mine),
            "complete": all(t.plan.is_full(m) for t in mine),
            "energy_per_body": _spread([float(t.per_body()[m - 1]) for t in mine]),
        }
        known = [t for t in mine if totals is not None and t.system in totals]
        if known and totals is not None:
            errors = [
                abs(float(truncated_energy(t.v, t.plan, m)) - totals[t.system]) for t in known
            ]
            entry["truncation_error"] = sum(errors) / len(errors)
            entry["truncation_error_per_body"] = sum(
                e / t.plan.n_bodies for e, t in zip(errors, known)
            ) / len(known)
        orders[str(m)] = entry
    return {
        "cutoffs": {str(m): r for m, r in cutoffs[0].items()} if cutoffs else {},
        "n_bodies": {
            "min": min(t.plan.n_bodies for t in terms),
            "max": max(t.plan.n_bodies for t in terms),
        },
        "orders": orders,
    }


def _spread(values: list[float]) -> dict[str, float]:
    x = torch.tensor(values, dtype=torch.float64)
    return {"mean": float(x.mean()), "std": float(x.std(unbiased=False))}


def _parent_row(parent: ase.Atoms, group_by: str | None) -> dict:
    return {
        "parent": int(parent.info[PARENT_KEY]),
        "group": None if group_by is None else str(parent.info.get(group_by)),
        "n_atoms": len(parent),
        "n_bodies": len(bodies_of(parent)),
    }


def _terms_row(terms: BodyOrderTerms) -> dict:
    """Ṽ^(m) and, with gradients, |dṼ^(m)/dr| of one parent (index 0 is m = 1)."""
    row = {"V_tilde": terms.v_tilde().tolist()}
    if terms.dv is not None:
        row["dV_tilde"] = terms.dv_tilde().tolist()
    return row


def per_parent(results: list[ParentResult], group_by: str | None) -> list[dict]:
    """Ṽ^(m) and |dṼ^(m)/dr| of each parent (index 0 is m = 1), model and
    reference, with its group."""
    rows = []
    for r in results:
        row = {**_parent_row(r.parent, group_by), "model": _terms_row(r.terms)}
        if r.reference is not None:
            row["reference"] = _terms_row(r.reference.terms())
        rows.append(row)
    return rows


def reference_per_parent(
    terms: list[BodyOrderTerms], parents: dict[int, ase.Atoms], group_by: str | None
) -> list[dict]:
    """Ṽ^(m) and |dṼ^(m)/dr| of each labelled parent (index 0 is m = 1), with its group.

    :param parents: the parent of each term, by ``mbe_parent`` id.
    """
    return [{**_parent_row(parents[t.system], group_by), "reference": _terms_row(t)} for t in terms]


def report_flags(report: dict) -> dict:
    """Flags on a finished report (the ``flags`` section of ``report.json``).

    - ``few_parents``: per section (``model``, ``reference``), the groups with
      fewer than :data:`MIN_PARENTS` parents and their number: a mean and a
      standard deviation over so few parents are rough (the standard error of
      the mean is std/sqrt(N), a third of the std or more).
    - ``undertrained`` (when the report has a per-order RMSE and the reference
      energies spread at all): at the largest labelled order m (the parents
      themselves when the expansion is complete), the ratio of the model's
      RMSE of E(S) per atom to the standard deviation of the reference E(S) per atom over
      the same clusters. The ratio is sqrt(1 - R²): 1 is
      a model no better than one constant energy per atom. It is flagged above
      :data:`UNDERTRAINED_RATIO` (R² < 0.75): the model has not learnt the
      energies it was trained on, so its body-ordered terms show its fitting
      error rather than the expansion it learnt. With several species the
      spread includes the composition, so the criterion is lenient there.
    - ``warnings``: one sentence per flag, for ``report.md`` and the terminal.
    """
    flags: dict = {"min_parents": MIN_PARENTS, "few_parents": {}, "warnings": []}
    for section in ("model", "reference"):
        groups = {
            group: stats["n_parents"]
            for group, stats in report.get(section, {}).get("groups", {}).items()
            if stats["n_parents"] < MIN_PARENTS
        }
        if groups:
            flags["few_parents"][section] = groups
    if flags["few_parents"]:
        counts = "; ".join(
            f"{section}: " + ", ".join(f"{group} ({n})" for group, n in groups.items())
            for section, groups in flags["few_parents"].items()
        )
        flags["warnings"].append(
            f"statistics over N < {MIN_PARENTS} parents ({counts}): "
            "the means and standard deviations are rough"
        )
    rmse = report.get("rmse", {})
    orders = sorted(rmse, key=int)
    if orders and rmse[orders[-1]]["reference_std_per_atom"] > 0:
        order, entry = orders[-1], rmse[orders[-1]]
        spread = entry["reference_std_per_atom"]
        ratio = entry["energy_per_atom"] / spread
        flags["undertrained"] = {
            "order": int(order),
            "rmse_per_atom": entry["energy_per_atom"],
            "reference_std_per_atom": spread,
            "ratio": ratio,
            "limit": UNDERTRAINED_RATIO,
            "flagged": ratio > UNDERTRAINED_RATIO,
        }
        if ratio > UNDERTRAINED_RATIO:
            flags["warnings"].append(
                f"the model looks undertrained: its RMSE of E(S) per atom on the labelled "
                f"{order}-body clusters, {1000 * entry['energy_per_atom']:.3g} meV/atom, is "
                f"{ratio:.2f} times the spread (std) of the reference E(S) per atom, "
                f"{1000 * spread:.3g} meV/atom (flagged above {UNDERTRAINED_RATIO}): "
                "its body-ordered terms show fitting error more than a learnt expansion"
            )
    return flags


def soap_distances(
    results: list[ParentResult], training_frames: list[ase.Atoms], cutoff: float | None
) -> dict:
    """Per order, the mean and largest SOAP distance of the sub-clusters to the
    nearest training structure (:mod:`~metatrain_mbe.compute.soap_distance`).

    The row of order N holds the parents themselves: the in-distribution scale.
    """
    from ..compute.soap_distance import mean_soap, nearest_distances

    species = sorted(
        {int(z) for a in training_frames for z in a.numbers}
        | {int(z) for r in results for z in r.parent.numbers}
    )
    radius = cutoff or 5.0
    training = mean_soap(training_frames, species, radius)
    structures, sizes = [], []
    for r in results:
        for row in range(1, r.plan.n_subsets):
            structures.append(r.parent[r.plan.atoms_in(row)])
            sizes.append(int(r.plan.orders[row]))
    distances = nearest_distances(mean_soap(structures, species, radius), training)
    orders = torch.tensor(sizes)
    return {
        "cutoff": radius,
        "n_training": len(training_frames),
        "orders": {
            str(m): {
                "mean": float(distances[orders == m].mean()),
                "max": float(distances[orders == m].max()),
                "n_subclusters": int((orders == m).sum()),
            }
            for m in sorted(set(orders.tolist()))
        },
    }
