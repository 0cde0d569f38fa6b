"""``mtt-mbe train``: ``mtt train`` with an ``mbe:`` section (sub-cluster
augmentation) and an MBE analysis of the trained model.

Flags are those of ``mtt train``: ``options``, ``-o/--output``,
``-e/--extensions`` (or ``--extensions-dir``), ``--restart`` and
``-r/--override key=value`` (which also reaches the ``mbe:`` section, e.g.
``-r mbe.proportion=0.1``), plus ``--overwrite`` to replace an existing model.
"""

from __future__ import annotations

import argparse

from .arguments import add_output, input_file

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    """Register ``train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a metatrain model with sub-cluster augmentation, then analyse its MBE",
        description=(
            "Validate and strip the 'mbe:' section, split the parents (sub-clusters follow "
            "their parent), inject a proportion of the labelled sub-cluster sets, write the "
            "data sets to OUTPUT_data/ and the plain metatrain options to "
            "OUTPUT_options.yaml, train with metatrain, then write the MBE analysis of the "
            "model on the test parents to OUTPUT_mbe/."
        ),
    )
    parser.add_argument(
        "options", type=input_file, help="options YAML file for training (metatrain + mbe:)"
    )
    add_output(parser, "file", "path to save the final model", default="model.pt")
    parser.add_argument(
        "-e",
        "--extensions",
        "--extensions-dir",
        default="extensions/",
        help="folder where the extensions of the model, if any, are collected",
    )
    parser.add_argument(
        "--restart",
        dest="restart_from",
        type=_checkpoint,
        help="checkpoint (.ckpt) to continue from, or 'auto' for the newest in outputs/ "
        "(read with torch's restricted unpickler: see --trust-checkpoint)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read the --restart checkpoint whole (a Python pickle runs code as it is read: "
        "only for a checkpoint whose origin you trust)",
    )
    parser.add_argument(
        "-r",
        "--override",
        dest="override_options",
        action="append",
        default=[],
        help="command-line override flags, e.g. -r mbe.proportion=0.1 (repeatable)",
    )
    parser.set_defaults(func=run)


def _checkpoint(text: str) -> str:
    return text if text == "auto" else input_file(text)


def run(args: argparse.Namespace) -> int:
    """Prepare, train and analyse."""
    from ..options import load_options
    from ..training import RunPaths, newest_checkpoint, train

    options = load_options(args.options, args.override_options)
    restart = newest_checkpoint() if args.restart_from == "auto" else args.restart_from
    paths = RunPaths.from_output(args.output, args.extensions)
    report = train(
        options,
        paths,
        restart_from=restart,
        trust_checkpoint=args.trust_checkpoint,
        source=args.options,
    )
    print(f"wrote {paths.model}, data sets in {paths.data}, options {paths.options}")
    if report is not None:
        print(f"MBE analysis of the model in {paths.report}")
    return 0
