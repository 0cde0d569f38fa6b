"""``mtt-mbe analyze``: body-ordered terms of labelled sub-cluster sets and,
with ``--model``, of a trained model's predictions on the parents."""

from __future__ import annotations

import argparse

from ...analysis import (
    ALL,
    AnalysisSettings,
    reference_terms,
    statistics_section,
    write_report,
    write_terms,
)
from ...compute.evaluator import BATCH_LAYOUTS, DEFAULT_BATCH_SIZE
from ...data import parse_e1, read_structures
from ...data.io import ENERGY_KEY, FORCES_KEY, staged_directory
from ...expansion import DEFAULT_MAX_ATOMS
from ..model_analysis import analyze_model


def add_parser(subparsers) -> None:
    """Register ``analyze``."""
    parser = subparsers.add_parser(
        "analyze",
        help="many-body expansion of labelled clusters",
        description=(
            "Group labelled sub-clusters per parent, compute V(S) for every sub-cluster "
            "and write DIR/reference/mbe_energy.mts, DIR/reference/mbe_summary.mts and "
            "DIR/report.json (per-order mean and standard deviation over parents). "
            "With --model, also evaluate every sub-cluster of the parents with the model "
            "and write DIR/model/*.mts, DIR/report.md, figures and a chemiscope view."
        ),
    )
    parser.add_argument("labelled", help="extended XYZ with parents, sub-clusters, isolated atoms")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.add_argument("--model", help="exported metatomic model (model.pt) to analyse")
    add_analysis_arguments(parser)
    add_model_arguments(parser)
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
    parser.add_argument("--energy-key", default=ENERGY_KEY, help="energy field (eV)")
    parser.add_argument("--forces-key", default=FORCES_KEY, help="forces field (eV/Å)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a model analysis (besides the model itself)."""
    parser.add_argument("-e", "--extensions", help="extensions directory of the model (SOAP-BPNN)")
    parser.add_argument(
        "--parents",
        type=int,
        nargs="+",
        metavar="ID",
        help="mbe_parent ids to analyse (default: every parent)",
    )
    parser.add_argument(
        "--training",
        metavar="XYZ",
        help="training structures, for the SOAP distance of the sub-clusters",
    )
    parser.add_argument("--device", help="torch device of the model (default: the model's)")
    parser.add_argument(
        "--subcluster-batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="largest number of sub-clusters per model call (default %(default)s)",
    )
    parser.add_argument(
        "--batch-layout",
        choices=[*BATCH_LAYOUTS, "auto"],
        default="auto",
        help="sub-clusters of a model call as fragments of one System, one System each, "
        "or the faster (default %(default)s)",
    )


def settings_from(args: argparse.Namespace) -> AnalysisSettings:
    """:class:`AnalysisSettings` from parsed command-line arguments."""
    return AnalysisSettings(
        max_order=args.max_order,
        max_atoms=args.max_atoms,
        group_by=args.group_by,
        e1=parse_e1(args.e1),
        energy_key=args.energy_key,
        forces_key=args.forces_key,
        batch_size=args.subcluster_batch_size,
        batch_layout=args.batch_layout,
    )


def run(args: argparse.Namespace) -> int:
    """Run the reference (and model) analysis and write its outputs."""
    settings = settings_from(args)
    frames = read_structures(args.labelled)
    if args.model is not None:
        report = analyze_model(
            args.model,
            frames,
            args.output,
            settings,
            extensions=args.extensions,
            parent_ids=args.parents,
            training_frames=None if args.training is None else read_structures(args.training),
            device=args.device,
        )
        print_model_report(report)
        print(f"wrote {args.output}/model/, report.md and report.json")
        return 0
    terms, parents, e1 = reference_terms(frames, settings)
    reference = statistics_section(terms, parents, settings.group_by)
    with staged_directory(args.output) as stage:
        write_terms(stage / "reference", terms)
        write_report(stage / "report.json", {"e1": e1, "reference": reference})
    _print_table(reference["groups"])
    print(f"wrote {args.output}/reference/mbe_energy.mts, mbe_summary.mts and report.json")
    return 0


def print_model_report(report: dict) -> None:
    """Print the model's per-order table (and the reference's, when labelled)."""
    for source in ("model", "reference"):
        if source in report:
            print(f"== {source} ==")
            _print_table(report[source]["groups"])
    if "warning" in report["precision"]:
        print(f"warning: {report['precision']['warning']}")


def _print_table(groups: dict) -> None:
    for name, stats in groups.items():
        label = "all parents" if name == ALL else name
        print(f"{label} ({stats['n_parents']} parents)")
        print(f"  {'m':>3} {'V~ mean':>12} {'V~ std':>10} {'|dV~/dr| mean':>14}  (eV/atom, eV/Å)")
        for m, entry in stats["orders"].items():
            dv = entry.get("dV_tilde", {}).get("mean", float("nan"))
            v = entry["V_tilde"]
            print(f"  {m:>3} {v['mean']:>12.5f} {v['std']:>10.5f} {dv:>14.5f}")
