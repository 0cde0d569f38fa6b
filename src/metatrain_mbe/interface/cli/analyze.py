"""``mtt-mbe analyze``: body-ordered terms of labelled sub-cluster sets."""

from __future__ import annotations

import argparse

from ...data import parse_e1, read_structures
from ...expansion import DEFAULT_MAX_ATOMS
from ..analysis import (
    AnalysisSettings,
    reference_terms,
    report_section,
    write_report,
    write_terms,
)
from ..output import staged_directory
from ..statistics import ALL


def add_parser(subparsers) -> None:
    """Register ``analyze``."""
    parser = subparsers.add_parser(
        "analyze",
        help="many-body expansion of labelled clusters",
        description=(
            "Group labelled sub-clusters per parent, compute V(S) for every sub-cluster "
            "and write DIR/reference/mbe_energy.mts, DIR/reference/mbe_summary.mts and "
            "DIR/report.json (per-order mean and standard deviation over parents)."
        ),
    )
    parser.add_argument("labelled", help="extended XYZ with parents, sub-clusters, isolated atoms")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    add_analysis_arguments(parser)
    parser.set_defaults(func=run)


def add_analysis_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by every command that runs an MBE analysis."""
    parser.add_argument(
        "--e1",
        nargs="+",
        metavar="SYMBOL=EV",
        help="isolated-atom energies in eV (default: single-atom structures of the file)",
    )
    parser.add_argument("--max-order", type=int, help="use sub-clusters of at most this many atoms")
    parser.add_argument(
        "--max-atoms",
        type=int,
        default=DEFAULT_MAX_ATOMS,
        help="largest cluster expanded completely (2^N sub-clusters; default %(default)s)",
    )
    parser.add_argument("--group-by", metavar="KEY", help="parent info key to group by")
    parser.add_argument("--energy-key", default="energy", help="energy field (eV)")
    parser.add_argument("--forces-key", default="forces", help="forces field (eV/Å)")


def settings_from(args: argparse.Namespace) -> AnalysisSettings:
    """:class:`AnalysisSettings` from parsed command-line arguments."""
    return AnalysisSettings(
        max_order=args.max_order,
        max_atoms=args.max_atoms,
        group_by=args.group_by,
        e1=parse_e1(args.e1),
        energy_key=args.energy_key,
        forces_key=args.forces_key,
    )


def run(args: argparse.Namespace) -> int:
    """Run the reference analysis and write its outputs."""
    settings = settings_from(args)
    frames = read_structures(args.labelled)
    terms, parents, e1 = reference_terms(frames, settings)
    reference = report_section(terms, parents, settings.group_by)
    with staged_directory(args.output) as stage:
        write_terms(stage / "reference", terms)
        write_report(stage / "report.json", {"e1": e1, "reference": reference})
    _print_table(reference["groups"])
    print(f"wrote {args.output}/reference/mbe_energy.mts, mbe_summary.mts and report.json")
    return 0


def _print_table(groups: dict) -> None:
    for name, stats in groups.items():
        label = "all parents" if name == ALL else name
        print(f"{label} ({stats['n_parents']} parents)")
        print(f"  {'m':>3} {'V~ mean':>12} {'V~ std':>10} {'|dV~/dr| mean':>14}  (eV/atom, eV/Å)")
        for m, entry in stats["orders"].items():
            dv = entry.get("dV_tilde", {}).get("mean", float("nan"))
            v = entry["V_tilde"]
            print(f"  {m:>3} {v['mean']:>12.5f} {v['std']:>10.5f} {dv:>14.5f}")
