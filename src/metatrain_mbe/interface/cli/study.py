"""``mtt-mbe study STUDY.yaml -o DIR``: the paper's experiments in one command."""

from __future__ import annotations

import argparse

from ...errors import MBEInputError
from ..options import options_table
from ..study import StudyOptions, load_study, run_study

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``study``."""
    parser = subparsers.add_parser(
        "study",
        help="train every architecture x proportion x seed of a study file and report "
        "whether the paper's findings hold",
        description=(
            "Split the parents once, run `mtt-mbe train` for every combination of the "
            "study's architectures, augmentation proportions, dataset proportions and seeds "
            "(finished runs are reused), then write DIR/study.json, DIR/figures/ and "
            "DIR/report.md. The study file's keys:\n\n" + options_table(StudyOptions)
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("study", help="study YAML file")
    parser.add_argument("-o", "--output", required=True, help="study directory")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained at once on this machine, one thread each (default: %(default)s)",
    )
    parser.add_argument(
        "--scheduler", help="address of a Dask scheduler whose workers train the runs"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, train, gather and report."""
    if args.jobs < 1:
        raise MBEInputError(f"--jobs: {args.jobs} is not a number of runs at once (>= 1)")
    study = load_study(args.study)
    result = run_study(
        study, args.output, jobs=args.jobs, scheduler=args.scheduler, source=args.study
    )
    print(
        f"{len(result['runs'])} runs; study in {args.output}/study.json, "
        f"report in {args.output}/report.md"
    )
    return 0
