"""The ``mtt-mbe`` command line: mirrors ``mtt`` and adds the MBE sub-commands.

Each sub-command lives in its own module with ``add_parser(subparsers)``, which
registers it and sets ``func`` to the function that runs it. Bad input raises
:class:`~metatrain_mbe.MBEInputError`: the CLI prints its one-line message and
exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ...errors import MBEInputError

__all__ = ["main"]

#: sub-command modules, in the order ``mtt-mbe --help`` lists them
_COMMANDS = [
    "bulk",
    "sample",
    "subclusters",
    "label",
    "analyze",
    "train",
    "eval",
    "export",
    "study",
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtt-mbe`` with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="mtt-mbe",
        description="Many-body expansion tools for metatrain models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mtt-mbe`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except MBEInputError as error:
        message = " ".join(str(error).split())
        print(f"mtt-mbe {args.command}: error: {message}", file=sys.stderr)
        return 2
    return int(code or 0)
