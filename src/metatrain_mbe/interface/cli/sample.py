"""``mtt-mbe sample``: cut clusters from periodic frames (paper section II B)."""

from __future__ import annotations

import argparse

from ...data import read_structures, write_structures
from ...data.sampling import PROTOCOLS, sample_clusters


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
    parser.add_argument("bulk", help="extended XYZ of periodic frames")
    parser.add_argument("--protocol", choices=PROTOCOLS, required=True)
    parser.add_argument("--size", type=int, default=8, help="atoms per cluster")
    parser.add_argument("-n", "--count", type=int, required=True, help="number of clusters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-id", type=int, default=0, help="mbe_parent of the first")
    parser.add_argument("-o", "--output", required=True, help="extended XYZ to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Sample and write the clusters."""
    frames = read_structures(args.bulk)
    clusters = sample_clusters(
        frames, args.protocol, args.size, args.count, args.seed, args.first_id
    )
    write_structures(args.output, clusters)
    print(f"wrote {len(clusters)} clusters to {args.output}")
    return 0
