"""``mtt-mbe schema train|study``: the JSON schema of an input file, for editors."""

from __future__ import annotations

import argparse
import sys

from .arguments import add_output

__all__ = ["add_parser", "run"]

#: the input file of each schema, for the help
_SCHEMA_KINDS = {"train": "an `mtt-mbe train` options file", "study": "an `mtt-mbe study` file"}


def add_parser(subparsers) -> None:
    """Register ``schema``."""
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON schema of a train options or study file, for editors",
        description=(
            "Print (or write with -o) the JSON schema of "
            + " or of ".join(f"{what} ({kind})" for kind, what in _SCHEMA_KINDS.items())
            + ", generated from the declarations of the options: metatrain's `mtt train` "
            "options with the `mbe:` section, or the study's keys. An editor with a YAML "
            "language server (VS Code's YAML extension) then completes and checks the file "
            "as it is typed; docs/schema.md says how to point it at the schema."
        ),
    )
    parser.add_argument("kind", choices=list(_SCHEMA_KINDS), help="which file's schema")
    add_output(parser, "file", "file to write the schema to (default: print it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print or write the schema."""
    from ...data.io import atomic_path
    from ..schema import schema_text

    text = schema_text(args.kind)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    with atomic_path(args.output) as path:
        with open(path, "w", encoding="ascii") as stream:
            stream.write(text)
    print(f"wrote {args.output}")
    return 0
