"""``report.md``: the MBE report (a model's, or the reference's alone) as
Markdown tables around the figures, each table with its units and definitions."""

from __future__ import annotations

import math
from pathlib import Path

__all__ = ["write_markdown"]


def write_markdown(
    path: Path, report: dict, figures: dict[str, str], viewer: Path | None, source: str = ""
) -> None:
    """Write ``report.md`` (units: eV, eV per body for Ṽ, eV/Å, Å).

    :param report: a model report, or a reference-only one (no ``model`` section).
    :param figures: figure title by path relative to ``path.parent``.
    :param viewer: the chemiscope view, if any.
    :param source: what was analysed (e.g. the model and data file names).
    """
    subject = "the model" if "model" in report else "the reference labels"
    lines = [f"# Many-body expansion of {subject}", ""]
    if source:
        lines += [f"Analysed: {source}.", ""]
    for warning in report.get("flags", {}).get("warnings", []):
        lines += [f"> **Warning:** {warning}.", ""]
    if "model_info" in report:
        info = report["model_info"]
        lines += [
            f"Evaluator: {info['evaluator']} ({info['dtype']}"
            + (f", batching: {info['strategy']}" if info["strategy"] else "")
            + f"); max order: {info['max_order'] or 'complete'}; analysis in float64.",
            "",
        ]
    if "warning" in report.get("precision", {}):
        lines += [f"> **Warning:** {report['precision']['warning']}.", ""]
        lines += _table(
            ["m", "round-off of V(S) (eV)", f"round-off of Ṽ^(m) ({report['units']['V_tilde']})"],
            [
                [m, f"{o['V']:.2e}", f"{o['V_tilde']:.2e}"]
                for m, o in report["precision"]["orders"].items()
            ],
        )
    lines += _e1_section(report)
    lines += _terms_section(report)
    if "family" in report:
        lines += _family_section(report)
    if "rmse" in report:
        lines += _rmse_section(report["rmse"])
    if "baselines" in report:
        lines += _baselines(report["baselines"])
    lines += _dimers(report)
    if "soap_distance" in report:
        soap = report["soap_distance"]
        lines += [
            "## Distance to the training set",
            "",
            f"Mean normalised SOAP power spectrum (cutoff {soap['cutoff']} Å), Euclidean "
            f"distance to the nearest of {soap['n_training']} training structures; the "
            "largest m are the parents themselves.",
            "",
        ]
        lines += _table(
            ["m", "sub-clusters", "mean distance", "largest distance"],
            [
                [m, o["n_subclusters"], f"{o['mean']:.4f}", f"{o['max']:.4f}"]
                for m, o in soap["orders"].items()
            ],
        )
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{title}]({relative})\n" for relative, title in figures.items()]
    if viewer is not None:
        lines += [
            f"Parents with their Ṽ^(m), |dṼ^(m)/dr| and m-body forces: open `{viewer.name}` at "
            "https://chemiscope.org or with `chemiscope.show_input`.",
            "",
        ]
    path.write_text("\n".join(lines))


def _e1_section(report: dict) -> list[str]:
    """The E_1 used first: every Ṽ^(m) depends on it (a shift δ of E_1 moves
    Ṽ^(m) by (−1)^(m−1)·δ, one species); for a model, its own against the reference.
    With molecules as bodies, the one-body terms are the molecules' own energies."""
    if report["units"]["bodies"] == "molecules" and not report["e1"]:
        lines = [
            "## One-body terms",
            "",
            "The bodies are molecules (`mbe_fragment`): V(S) of a single molecule is its "
            "own energy in the parent geometry, labelled as a sub-cluster of order 1 (and, "
            "for a model, predicted); no isolated-atom energy enters the expansion.",
            "",
        ]
        one_body = report.get("one_body", {})
        return lines + _table(
            ["molecule", "count", "reference V({i}) (eV)", "model V({i}) (eV)", "RMSE (meV)"],
            [
                [
                    formula,
                    o["n"],
                    f"{o['reference_mean']:.6g} ± {o['reference_std']:.2g}"
                    if "reference_mean" in o
                    else "—",
                    f"{o['model_mean']:.6g}" if "model_mean" in o else "—",
                    f"{1000 * o['rmse']:.3g}" if "rmse" in o else "—",
                ]
                for formula, o in one_body.items()
            ],
        )
    lines = ["## Isolated-atom energy E_1", ""]
    if "e1_check" not in report:
        given = set(report.get("e1_given", []))
        lines += _table(
            ["species", "E_1 (eV)", "from"],
            [
                [s, f"{e:.6f}", "given (--e1)" if s in given else "isolated atom of the data"]
                for s, e in report["e1"].items()
            ],
        )
        return lines + [
            "E_1 is V(S) of a single atom and enters every V(S) of more atoms through "
            "the Möbius inversion: a shift δ of E_1 moves Ṽ^(m) by (−1)^(m−1)·δ at every "
            "order (one species); |dṼ^(m)/dr| does not depend on E_1.",
            "",
        ]
    check = report["e1_check"]
    if not check["difference"]:
        return lines + ["No reference E_1: the model's own E_1 is used throughout.", ""]
    lines += _table(
        ["species", "model E_1 (eV)", "reference E_1 (eV)", "model − reference (meV)"],
        [
            [s, f"{check['model'][s]:.6f}", f"{check['reference'][s]:.6f}", f"{1000 * d:+.1f}"]
            for s, d in check["difference"].items()
        ],
    )
    if "warning" in check:
        lines += [f"> **Warning:** {check['warning']}.", ""]
    lines += [
        "A model E_1 off by δ adds (−1)^(m−1)·δ to its Ṽ^(m) at every order (one "
        "species); the tables below therefore show the model's Ṽ^(m) with the reference "
        "E_1 next to its own. |dṼ^(m)/dr| does not depend on E_1.",
        "",
    ]
    return lines


def _has_forces(groups: dict) -> bool:
    """Whether any |dṼ/dr| of the groups is a number (labels with forces)."""
    return any(
        math.isfinite(entry.get("dV_tilde", {}).get("mean", math.nan))
        for stats in groups.values()
        for entry in stats.get("orders", {}).values()
    )


def _terms_section(report: dict) -> list[str]:
    """Per group: |dṼ/dr| (independent of E_1) first, then Ṽ; for a model, with
    the reference E_1, with its own, and the reference's."""
    model = report.get("model", {}).get("groups")
    reference = report.get("reference", {}).get("groups", {})
    per_body = report["units"]["V_tilde"]
    body = per_body.removeprefix("eV/")
    reference_dv = (r"\|dṼ/dr\| reference (eV/Å)", reference, "dV_tilde")
    reference_v = (f"Ṽ reference ({per_body})", reference, "V_tilde")
    columns = [reference_dv, reference_v]
    if model is not None:
        shifted = report.get("model_reference_e1", {}).get("groups", {})
        columns = [
            (r"\|dṼ/dr\| model (eV/Å)", model, "dV_tilde"),
            reference_dv,
            (f"Ṽ model, reference E_1 ({per_body})", shifted, "V_tilde"),
            (f"Ṽ model, own E_1 ({per_body})", model, "V_tilde"),
            reference_v,
        ]
        if report["units"]["bodies"] == "molecules":  # no E_1: one Ṽ column per source
            columns[2:4] = [(f"Ṽ model ({per_body})", model, "V_tilde")]
    lines = [
        "## Body-ordered terms (paper Eq. 7 and 8)",
        "",
        "Each cell is the mean ± standard deviation over the parents of the group. "
        f"Ṽ^(m) = Σ_{{|S|=m}} V(S) / (C(N,m)·m) (Eq. 7) is the mean m-body energy per {body} "
        f"of a parent of N {body}s, in {per_body}; |dṼ^(m)/dr| is the mean over |S| = m of the "
        "RMS over the atoms i of S of |dV(S)/dr_i| (Eq. 8), the size of the m-body "
        "forces in eV/Å. V(S) are the Möbius inverse of the energies E(S) of the "
        "sub-clusters.",
        "",
    ]
    if reference and not _has_forces(reference):
        lines += [
            "The reference labels have energies only (e.g. `mtt-mbe label --method fci`): "
            "|dṼ^(m)/dr| needs forces, so its column is empty (nan).",
            "",
        ]
    for group, stats in (model or reference).items():
        n = stats["n_parents"]
        lines += [f"### {group} ({n} parent{'s' * (n != 1)})", ""]
        rows = [
            [
                m,
                *(
                    _mean_std(groups.get(group, {}).get("orders", {}).get(m, {}).get(key))
                    for _, groups, key in columns
                ),
            ]
            for m in stats["orders"]
        ]
        lines += _table(["m", *(header for header, _, _ in columns)], rows)
    return lines


def _family_section(report: dict) -> list[str]:
    """Per order: kept sub-clusters against C(N, m), the m-body energy per body
    and the truncation error |E_K - E| of K = m."""
    family = report["family"]
    per_body = report["units"]["V_tilde"]
    body = per_body.removeprefix("eV/")
    cutoffs = family["cutoffs"]
    screening = (
        "screened: every two bodies of a kept sub-cluster within "
        + ", ".join(f"{r:g} Å from order {m}" for m, r in cutoffs.items())
        + (" (molecules: their closest atoms)" if body == "molecule" else "")
        if cutoffs
        else "not screened"
    )
    sizes = family["n_bodies"]
    n = str(sizes["min"]) if sizes["min"] == sizes["max"] else f"{sizes['min']}–{sizes['max']}"
    lines = [
        "## The expansion's family and its truncation",
        "",
        f"Parents of {n} {body}s; sub-clusters {screening}. Per order m: the kept "
        "sub-clusters against C(N, m) summed over parents (Ṽ^(m) and |dṼ^(m)/dr| exist "
        f"only where all are kept), the m-body energy per {body} Σ_kept V(S) / N "
        f"({per_body}, mean ± std over parents) and, where the parents' own energy is "
        "known, the mean truncation error |E_K − E| of K = m (eV, and per "
        f"{body}).",
        "",
    ]
    rows = [
        [
            m,
            f"{o['kept']} of {o['possible']}",
            _mean_std(o["energy_per_body"]),
            _number(o.get("truncation_error")),
            _number(o.get("truncation_error_per_body")),
        ]
        for m, o in family["orders"].items()
    ]
    headers = ["m", "kept", f"Σ V / N ({per_body})", "abs(E_K − E) (eV)", f"per {body} (eV)"]
    return lines + _table(headers, rows)


def _rmse_section(rmse: dict) -> list[str]:
    lines = [
        "## Per-order RMSE on the labelled sub-clusters",
        "",
        "Over the labelled sub-clusters S of m bodies (m = N: the parents themselves): "
        "the RMSE of the model's energy per atom, E(S) divided by the number of atoms of "
        "S, in eV/atom, and of the force components on the atoms of S, in eV/Å. The "
        "standard deviation of the reference E(S) per atom over the same sub-clusters is "
        "the RMSE of one constant energy per atom: the undertrained flag compares the two "
        "at the largest m. These are "
        "errors of whole energies; the dimer table gives the error of the two-body term "
        "V^(2) itself, in eV per dimer.",
        "",
    ]
    return lines + _table(
        [
            "m",
            "sub-clusters",
            "RMSE of E(S) per atom (eV/atom)",
            "std of reference E(S) per atom (eV/atom)",
            "RMSE of forces (eV/Å)",
        ],
        [
            [
                m,
                e["n_subclusters"],
                f"{e['energy_per_atom']:.4g}",
                f"{e['reference_std_per_atom']:.4g}",
                _number(e.get("forces")),
            ]
            for m, e in rmse.items()
        ],
    )


def _baselines(baselines: dict) -> list[str]:
    if not baselines["V_tilde"]:
        return []  # fragments as bodies: no isolated-atom baseline
    lines = ["## E_1 baselines (appendix C)", ""]
    e1 = baselines["e1"]
    symbols = sorted({s for values in e1.values() for s in values})
    lines += _table(
        ["E_1 (eV)", *symbols],
        [
            [name, *(f"{values[s]:.6g}" if s in values else "—" for s in symbols)]
            for name, values in e1.items()
        ],
    )
    lines += [
        "Mean Ṽ^(m) (eV/atom) with each baseline. The effective E_1 is fitted per parent "
        "by least squares so that E(S) ≈ Σ_{i∈S} E_1(Z_i) over the sub-clusters of two or "
        "more atoms: it removes the part of the energies linear in the number of atoms "
        "(the m·ε of appendix C). What remains depends on the system: it can damp an "
        "alternating trend or create one.",
        "",
    ]
    columns = [(source, name) for source, by in baselines["V_tilde"].items() for name in by]
    orders = sorted({int(m) for s, n in columns for m in baselines["V_tilde"][s][n]})
    lines += _table(
        ["m", *(f"{source}, {name} E_1" for source, name in columns)],
        [
            [m, *(_number(baselines["V_tilde"][s][n].get(str(m))) for s, n in columns)]
            for m in orders
        ],
    )
    return lines


def _dimers(report: dict) -> list[str]:
    dimers = report["dimers"]
    if not dimers:
        return []
    lines = [
        "## Dimer curves",
        "",
        "V^(2)(r) = E(AB) − E(A) − E(B) is the two-body term of a dimer at distance r, "
        "in eV per dimer (not per body); the labelled dimers are the two-body sub-clusters "
        "of the parents (two atoms, or two molecules at the distance r of their centres of "
        "mass).",
    ]
    columns = [
        ("labelled dimers", lambda d: len(d.get("r", []))),
        ("r (Å)", lambda d: _span(d.get("r"))),
        ("lowest reference V^(2) (eV) at r (Å)", lambda d: _lowest(d.get("r"), d.get("reference"))),
    ]
    if "model" in report:
        lines[-1] += (
            " The model's lowest V^(2) is that of its curve on a grid of r; its RMSE is "
            "against the reference V^(2) of the labelled dimers, in eV per dimer (each V^(2) "
            "with its own E_1): not the per-order RMSE of E(S) per atom above, in eV/atom."
        )
        columns += [
            (
                "lowest model V^(2) (eV) at r (Å)",
                lambda d: _lowest(d["grid"]["r"], d["grid"]["model"]),
            ),
            ("RMSE of model V^(2) (eV per dimer)", lambda d: _number(d.get("rmse"))),
        ]
    lines += [""]
    return lines + _table(
        ["pair", *(header for header, _ in columns)],
        [[name, *(cell(data) for _, cell in columns)] for name, data in dimers.items()],
    )


def _span(values: list[float] | None) -> str:
    return "—" if not values else f"{min(values):.3f} – {max(values):.3f}"


def _lowest(r: list[float] | None, v: list[float] | None) -> str:
    if not v or r is None:
        return "—"
    best = min(range(len(v)), key=v.__getitem__)
    return f"{v[best]:.4f} at {r[best]:.3f}"


def _mean_std(entry: dict | None) -> str:
    return "—" if entry is None else f"{entry['mean']:.4g} ± {entry['std']:.2g}"


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines + [""]
