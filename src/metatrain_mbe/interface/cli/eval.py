"""``mtt-mbe eval``: ``mtt eval`` (metrics and predictions) plus the model's MBE report.

The options file is ``mtt eval``'s, with an optional ``mbe:`` section
(:class:`~metatrain_mbe.interface.options.EvalOptions`, every key in
``docs/analysis.md``) that is validated and stripped before metatrain sees it::

    systems: test.xyz          # parents (+ labelled sub-clusters, isolated atoms)
    targets: {energy: {key: energy}}
    mbe:
      max_order: 8
      group_by: regime
      parents: [0, 3]          # mbe_parent ids (default: all)
      training_set: train.xyz  # for the SOAP distance section
      output: mbe              # report directory (default: mbe/ next to -o)

Command-line flags given explicitly override the ``mbe:`` section.
"""

from __future__ import annotations

import argparse

from .analyze import add_analysis_arguments, add_model_arguments, print_model_report
from .arguments import (
    add_output,
    at_least,
    check_device,
    input_file,
    model_file,
    output,
)

#: ``mbe:`` keys and the command-line flags that override them
_FLAGS = {
    "max_order": "max_order",
    "cutoff": "cutoff",
    "max_atoms": "max_atoms",
    "group_by": "group_by",
    "e1": "e1",
    "parents": "parents",
    "training_set": "training",
    "output": "mbe_output",
    "subcluster_batch_size": "subcluster_batch_size",
    "batch_layout": "batch_layout",
}


def add_parser(subparsers) -> None:
    """Register ``eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="mtt eval plus the MBE report of the model",
        description=(
            "Run metatrain's `mtt eval` (predictions and metrics), then decompose the "
            "model's predictions on the parents of the evaluation set into body orders "
            "and write the MBE report (see `mtt-mbe analyze --model`)."
        ),
    )
    parser.add_argument("path", type=model_file, help="exported model (.pt)")
    parser.add_argument(
        "options", type=input_file, help="eval options YAML, with an optional `mbe:` section"
    )
    add_output(parser, "file", "predictions file", default="output.xyz")
    parser.add_argument(
        "-b",
        "--batch-size",
        type=at_least(1, "a batch size"),
        default=1,
        help="structures per batch of `mtt eval` (its -b)",
    )
    parser.add_argument(
        "--check-consistency",
        action="store_true",
        help="run metatomic's consistency checks on the model (slower)",
    )
    parser.add_argument(
        "--warm-up",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the model 10 times before evaluating, for representative timings",
    )
    parser.add_argument(
        "--mbe-output",
        type=output("directory"),
        help="MBE report directory (default: mbe/ next to -o)",
    )
    add_analysis_arguments(parser)
    add_model_arguments(parser)
    # unset flags stay None, so that only the given ones override the mbe: section
    parser.set_defaults(func=run, **{flag: None for flag in _FLAGS.values()})


def run(args: argparse.Namespace) -> int:
    """Evaluate with metatrain, then analyse every evaluation set."""
    from ...data import parse_e1
    from ..evaluation import evaluate_with_mbe
    from ..options import EvalOptions, load_options, parse_options

    check_device(args.device)
    options = load_options(args.options)
    mbe = parse_options(options.pop("mbe", None), args.options, EvalOptions)
    updates = {key: getattr(args, flag) for key, flag in _FLAGS.items()}
    updates = {key: value for key, value in updates.items() if value is not None}
    if "e1" in updates:
        updates["e1"] = parse_e1(updates["e1"])
    reports = evaluate_with_mbe(
        args.path,
        options,
        mbe.model_copy(update=updates),
        output=args.output,
        extensions=args.extensions,
        device=args.device,
        batch_size=args.batch_size,
        check_consistency=args.check_consistency,
        warm_up=args.warm_up,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
    )
    for directory, report in reports.items():
        print_model_report(report)
        print(f"wrote the MBE report to {directory}/report.md")
    return 0
