"""``mtt-mbe analyze``: body-ordered terms of labelled sub-cluster sets and,
with ``--model``, of a trained model's predictions on the parents."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .arguments import (
    CUTOFF_HELP,
    Constant,
    add_output,
    at_least,
    check_device,
    cutoffs,
    device,
    input_folder,
    model_file,
    structures_file,
)

if TYPE_CHECKING:
    from ...analysis import AnalysisSettings


def add_parser(subparsers) -> None:
    """Register ``analyze``."""
    parser = subparsers.add_parser(
        "analyze",
        help="many-body expansion of labelled clusters",
        description=(
            "Group labelled sub-clusters per parent, compute V(S) for every sub-cluster "
            "and write DIR/reference/mbe_energy.mts, DIR/reference/mbe_summary.mts, "
            "DIR/report.json (per-order mean and standard deviation over parents), "
            "DIR/report.md and DIR/figures/. With --model, also evaluate every sub-cluster "
            "of the parents with the model and write DIR/model/*.mts and a chemiscope view."
        ),
    )
    parser.add_argument(
        "labelled",
        type=structures_file,
        help="extended XYZ with parents, sub-clusters, isolated atoms",
    )
    add_output(parser, "directory", "output folder", required=True)
    parser.add_argument(
        "--model", type=model_file, help="exported metatomic model (model.pt) to analyse"
    )
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
    parser.add_argument(
        "--max-order",
        type=at_least(2, "a body order"),
        help="use sub-clusters of at most this many bodies (atoms, or molecules)",
    )
    parser.add_argument("--cutoff", type=cutoffs, metavar="R", help=CUTOFF_HELP)
    parser.add_argument(
        "--max-atoms",
        type=at_least(2, "a number of atoms"),
        default=Constant("expansion", "DEFAULT_MAX_ATOMS"),
        help="largest cluster expanded completely (2^N sub-clusters)",
    )
    parser.add_argument("--group-by", metavar="KEY", help="parent info key to group by")
    parser.add_argument(
        "--energy-key", default=Constant("data.io", "ENERGY_KEY"), help="energy field (eV)"
    )
    parser.add_argument(
        "--forces-key", default=Constant("data.io", "FORCES_KEY"), help="forces field (eV/Å)"
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a model analysis (besides the model itself)."""
    parser.add_argument(
        "-e",
        "--extensions",
        "--extensions-dir",
        type=input_folder,
        help="extensions directory of the model (SOAP-BPNN)",
    )
    parser.add_argument(
        "--parents",
        type=at_least(0, "an mbe_parent id"),
        nargs="+",
        metavar="ID",
        help="mbe_parent ids to analyse (default: every parent)",
    )
    parser.add_argument(
        "--training",
        type=structures_file,
        metavar="XYZ",
        help="training structures, for the SOAP distance of the sub-clusters",
    )
    parser.add_argument(
        "--device", type=device, help="torch device of the model (default: the model's)"
    )
    parser.add_argument(
        "--subcluster-batch-size",
        type=at_least(1, "a number of sub-clusters"),
        default=Constant("compute.evaluator", "DEFAULT_SUBCLUSTER_BATCH_SIZE"),
        help="largest number of sub-clusters per model call",
    )
    parser.add_argument(
        "--batch-layout",
        choices=Constant("compute.evaluator", "BATCH_LAYOUTS", plus=("auto",)),
        metavar="LAYOUT",
        default="auto",
        help="%(choices)s: sub-clusters of a model call as fragments of one System, one "
        "System each, or the faster",
    )


def settings_from(args: argparse.Namespace) -> AnalysisSettings:
    """:class:`AnalysisSettings` from parsed command-line arguments, through
    the options they stand for (:class:`~metatrain_mbe.interface.options.EvalOptions`)."""
    from ...data import parse_e1
    from ..options import EvalOptions, analysis_settings

    options = EvalOptions(
        max_order=args.max_order,
        cutoff=args.cutoff,
        group_by=args.group_by,
        subcluster_batch_size=args.subcluster_batch_size,
        batch_layout=args.batch_layout,
    )
    return analysis_settings(
        options,
        max_atoms=args.max_atoms,
        e1=parse_e1(args.e1),
        energy_key=args.energy_key,
        forces_key=args.forces_key,
    )


def run(args: argparse.Namespace) -> int:
    """Run the reference (and model) analysis and write its outputs."""
    from ...data.io import read_structures

    frames = read_structures(args.labelled)  # a bad file is reported before torch loads
    from ..model_analysis import analyze_model
    from ..reference_analysis import analyze_reference

    check_device(args.device)
    settings = settings_from(args)
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
    report = analyze_reference(frames, args.output, settings, parent_ids=args.parents)
    _print_table(report["reference"]["groups"], report["units"]["V_tilde"])
    _print_warnings(report)
    print(f"wrote {args.output}/reference/, report.json, report.md and figures/")
    return 0


def print_model_report(report: dict) -> None:
    """Print the model's per-order table (and the reference's, when labelled)."""
    for source in ("model", "reference"):
        if source in report:
            print(f"== {source} ==")
            _print_table(report[source]["groups"], report["units"]["V_tilde"])
    if "warning" in report["precision"]:
        print(f"warning: {report['precision']['warning']}")
    _print_warnings(report)


def _print_warnings(report: dict) -> None:
    """The report's flags (few parents, undertrained model), one line each."""
    for warning in report.get("flags", {}).get("warnings", []):
        print(f"warning: {warning}")


def _print_table(groups: dict, per_body: str) -> None:
    from ...analysis import ALL

    for name, stats in groups.items():
        label = "all parents" if name == ALL else name
        print(f"{label} ({stats['n_parents']} parents)")
        print(
            f"  {'m':>3} {'V~ mean':>12} {'V~ std':>10} {'|dV~/dr| mean':>14} {'sum V/N':>12}"
            f"  ({per_body}, eV/Å, {per_body})"
        )
        nan = {"mean": float("nan"), "std": float("nan")}
        for m, entry in stats["orders"].items():
            dv = entry.get("dV_tilde", nan)["mean"]
            v = entry.get("V_tilde", nan)
            per = entry["energy_per_body"]["mean"]
            print(f"  {m:>3} {v['mean']:>12.5f} {v['std']:>10.5f} {dv:>14.5f} {per:>12.5f}")
