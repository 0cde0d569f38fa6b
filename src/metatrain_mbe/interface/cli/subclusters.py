"""``mtt-mbe subclusters``: write the canonical sub-clusters of parents, to label."""

from __future__ import annotations

import argparse

from ...errors import MBEInputError
from .arguments import CUTOFF_HELP, add_output, cutoffs, structures_file


def add_parser(subparsers) -> None:
    """Register ``subclusters``."""
    parser = subparsers.add_parser(
        "subclusters",
        help="enumerate the sub-clusters of parent clusters",
        description=(
            "Write every m-body subset of each parent (atoms, or molecules with "
            "mbe_fragment), or with --cutoff only the compact ones, as a structure with "
            "mbe_parent, mbe_atoms and mbe_order: label the output with any code (or "
            "`mtt-mbe label`), then run `mtt-mbe analyze` on it (with the same --cutoff)."
        ),
    )
    parser.add_argument("parents", type=structures_file, help="extended XYZ of parent clusters")
    add_output(parser, "file", "extended XYZ to write", required=True)
    parser.add_argument(
        "--orders",
        default=None,
        help="sub-cluster sizes in bodies, e.g. 2:7 (default: 2 to N-1 atoms, or 1 to K-1 "
        "molecules for parents with mbe_fragment)",
    )
    parser.add_argument("--cutoff", type=cutoffs, metavar="R", help=CUTOFF_HELP)
    parser.add_argument("--ids", help="only these parents (mbe_parent ids), e.g. 0:11,200:211")
    parser.add_argument(
        "--with-parents",
        action="store_true",
        help="also write the parents (with their mbe_parent ids) and one isolated atom "
        "per species, so that the labelled output is a complete analysis input",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Enumerate and write the sub-clusters."""
    from ...cutoffs import Cutoffs
    from ...data.io import FRAGMENT_KEY, read_structures, write_structures

    parents = read_structures(args.parents)  # a bad file is reported before torch loads
    from ...data.subclusters import (
        assign_parent_ids,
        bodies_of,
        enumerate_subclusters,
        isolated_atoms,
        parse_orders,
        parse_ranges,
    )

    parents = assign_parent_ids(parents)
    if args.ids is not None:
        wanted = set(parse_ranges(args.ids, "--ids"))
        parents = [p for p in parents if int(p.info["mbe_parent"]) in wanted]
        if not parents:
            raise MBEInputError(
                f"{args.parents}: no parent has an mbe_parent id in --ids {args.ids}"
            )
    largest = max(len(bodies_of(p)) for p in parents)
    smallest = 1 if FRAGMENT_KEY in parents[0].arrays else 2
    orders = None if args.orders is None else parse_orders(args.orders, largest - 1, smallest)
    subs = enumerate_subclusters(parents, orders, Cutoffs.parse(args.cutoff))
    frames = subs
    if args.with_parents:
        frames = isolated_atoms(parents) + [_unlabelled(p) for p in parents] + subs
    write_structures(args.output, frames)
    print(f"wrote {len(subs)} sub-clusters of {len(parents)} parents to {args.output}")
    return 0


def _unlabelled(atoms):
    atoms = atoms.copy()
    atoms.calc = None
    for key in ("energy", "free_energy", "stress"):
        atoms.info.pop(key, None)
    atoms.arrays.pop("forces", None)
    return atoms
