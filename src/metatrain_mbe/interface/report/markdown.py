"""``report.md``: the model MBE report as Markdown tables around the figures."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_markdown"]


def write_markdown(path: Path, report: dict, figures: dict[str, str], viewer: Path | None) -> None:
    """Write ``report.md`` (units: eV, eV/atom for Ṽ, eV/Å, Å)."""
    info = report["model_info"]
    lines = [
        "# Many-body expansion of the model",
        "",
        f"Evaluator: {info['evaluator']} ({info['dtype']}"
        + (f", batching: {info['strategy']}" if info["strategy"] else "")
        + f"); max order: {info['max_order'] or 'complete'}; analysis in float64.",
        "",
    ]
    if "warning" in report["precision"]:
        lines += [f"> **Warning:** {report['precision']['warning']}.", ""]
        lines += _table(
            ["m", "round-off of V(S) (eV)", "round-off of Ṽ^(m) (eV/atom)"],
            [
                [m, f"{o['V']:.2e}", f"{o['V_tilde']:.2e}"]
                for m, o in report["precision"]["orders"].items()
            ],
        )
    lines += _e1_section(report["e1_check"])
    lines += _terms_section(report)
    if "rmse" in report:
        lines += ["## Per-order RMSE on the labelled sub-clusters", ""]
        lines += _table(
            ["m", "sub-clusters", "energy (eV/atom)", "forces (eV/Å)"],
            [
                [
                    m,
                    e["n_subclusters"],
                    f"{e['energy_per_atom']:.4g}",
                    f"{e['forces']:.4g}" if "forces" in e else "—",
                ]
                for m, e in report["rmse"].items()
            ],
        )
    lines += _baselines(report["baselines"])
    lines += _dimers(report["dimers"])
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
            f"Sub-clusters coloured by V(S): open `{viewer.name}` at "
            "https://chemiscope.org or with `chemiscope.show_input`.",
            "",
        ]
    path.write_text("\n".join(lines))


def _e1_section(check: dict) -> list[str]:
    """The model's isolated-atom energy against the reference, first: every
    model Ṽ^(m) depends on it."""
    lines = ["## Isolated-atom energy E_1", ""]
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


def _terms_section(report: dict) -> list[str]:
    """Per group: |dṼ/dr| (independent of E_1) first, then Ṽ with the
    reference E_1, with the model's own, and the reference's."""
    lines = ["## Body-ordered terms (paper Eq. 7 and 8)", ""]
    shifted = report.get("model_reference_e1", {}).get("groups", {})
    for group, stats in report["model"]["groups"].items():
        reference = report.get("reference", {}).get("groups", {}).get(group, {})
        lines += [f"### {group} ({stats['n_parents']} parents)", ""]
        rows = []
        for m, entry in stats["orders"].items():
            ref = reference.get("orders", {}).get(m, {})
            same_e1 = shifted.get(group, {}).get("orders", {}).get(m, {})
            rows.append(
                [
                    m,
                    _mean_std(entry.get("dV_tilde")),
                    _mean_std(ref.get("dV_tilde")),
                    _mean_std(same_e1.get("V_tilde")),
                    _mean_std(entry["V_tilde"]),
                    _mean_std(ref.get("V_tilde")),
                ]
            )
        lines += _table(
            [
                "m",
                r"\|dṼ/dr\| model (eV/Å)",
                r"\|dṼ/dr\| reference",
                "Ṽ model, reference E_1 (eV/atom)",
                "Ṽ model, own E_1",
                "Ṽ reference",
            ],
            rows,
        )
    return lines


def _baselines(baselines: dict) -> list[str]:
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


def _dimers(dimers: dict) -> list[str]:
    lines = ["## Dimer curves", ""]
    for name, data in dimers.items():
        grid = data["grid"]
        best = min(range(len(grid["model"])), key=grid["model"].__getitem__)
        text = (
            f"{name}: model minimum V^(2) = {grid['model'][best]:.4f} eV at "
            f"r = {grid['r'][best]:.3f} Å"
        )
        if data.get("r"):
            errors = [m - r for m, r in zip(data["model"], data["reference"])]
            rmse = (sum(e * e for e in errors) / len(errors)) ** 0.5
            text += f"; RMSE against {len(errors)} labelled dimers: {rmse:.4f} eV"
        lines += [f"- {text}"]
    return lines + [""]


def _mean_std(entry: dict | None) -> str:
    return "—" if entry is None else f"{entry['mean']:.4g} ± {entry['std']:.2g}"


def _number(value) -> str:
    return "—" if value is None else f"{value:.4g}"


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines + [""]
