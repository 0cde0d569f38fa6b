"""``mtt-mbe sample``: cut clusters from periodic frames (paper section II B)."""

from __future__ import annotations

import argparse

from .arguments import Constant, add_output, at_least, structures_file


def add_parser(subparsers) -> None:
    """Register ``sample``."""
    parser = subparsers.add_parser(
        "sample",
        help="cut finite clusters from periodic frames",
        description=(
            "nearest: a random atom and its nearest neighbours (minimum image); pairs: a "
            "random atom and its closest neighbour, then the nearest pairs. Clusters are "
            "unwrapped, centred, non-periodic, and numbered with mbe_parent ids."
        ),
    )
    parser.add_argument("bulk", type=structures_file, help="extended XYZ of periodic frames")
    parser.add_argument(
        "--protocol",
        choices=Constant("data.sampling", "PROTOCOLS"),
        metavar="PROTOCOL",
        required=True,
        help="%(choices)s (see above)",
    )
    parser.add_argument(
        "--size", type=at_least(2, "a cluster size"), default=8, help="atoms per cluster"
    )
    parser.add_argument(
        "-n",
        "--count",
        type=at_least(1, "a number of clusters"),
        required=True,
        help="number of clusters (at most the atoms of all frames)",
    )
    parser.add_argument("--seed", type=at_least(0, "a random seed"), default=0, help="random seed")
    parser.add_argument(
        "--first-id",
        type=at_least(0, "an mbe_parent id"),
        default=0,
        help="mbe_parent of the first",
    )
    add_output(parser, "file", "extended XYZ to write", required=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sample and write the clusters."""
    from ...data import read_structures, write_structures
    from ...data.sampling import sample_clusters

    frames = read_structures(args.bulk)
    clusters = sample_clusters(
        frames, args.protocol, args.size, args.count, args.seed, args.first_id
    )
    write_structures(args.output, clusters)
    print(f"wrote {len(clusters)} clusters to {args.output}")
    return 0
