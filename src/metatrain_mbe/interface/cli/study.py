"""``mtt-mbe study STUDY.yaml -o DIR``: the paper's experiments in one command."""

from __future__ import annotations

import argparse

from .arguments import HelpFormatter, at_least, input_file, resumable, scheduler

__all__ = ["add_parser", "run"]


class _Formatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, and the description's table kept as written."""


def _description() -> str:
    from ..options import options_table
    from ..study import StudyOptions

    return (
        "Split the parents once, run `mtt-mbe train` for every combination of the "
        "study's architectures, training compositions, augmentation proportions, dataset "
        "proportions and seeds (finished runs are reused), measure each model on the test "
        "parents and on every group of the extrapolation structures, then write "
        "DIR/study.json, DIR/figures/ and DIR/report.md. The study file's keys:\n\n"
        + options_table(StudyOptions)
    )


def add_parser(subparsers) -> None:
    """Register ``study``."""
    parser = subparsers.add_parser(
        "study",
        help="train every architecture x composition x proportion x seed of a study file "
        "and report whether the paper's findings hold",
        description=_description,
        formatter_class=_Formatter,
    )
    parser.add_argument("study", type=input_file, help="study YAML file")
    parser.add_argument(
        "-o",
        "--output",
        type=resumable("directory"),
        required=True,
        help="study directory (an existing one is resumed: finished runs are kept)",
    )
    parser.add_argument(
        "--jobs",
        type=at_least(1, "a number of runs at once"),
        default=1,
        help="runs trained at once on this machine, one thread each",
    )
    parser.add_argument(
        "--scheduler",
        type=scheduler,
        help="address of a Dask scheduler whose workers train the runs",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan, train, gather and report."""
    from ..study import load_study, run_study

    study = load_study(args.study)
    result = run_study(
        study, args.output, jobs=args.jobs, scheduler=args.scheduler, source=args.study
    )
    print(
        f"{len(result['runs'])} runs; study in {args.output}/study.json, "
        f"report in {args.output}/report.md"
    )
    return 0
