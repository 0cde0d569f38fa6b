"""``mtt-mbe sample``: cut clusters from periodic frames (paper section II B),
or spheres of whole molecules or atoms (``--protocol sphere --radius R``)."""

from __future__ import annotations

import argparse

from .arguments import Constant, add_output, at_least, positive_float, structures_file


def add_parser(subparsers) -> None:
    """Register ``sample``."""
    parser = subparsers.add_parser(
        "sample",
        help="cut finite clusters from periodic frames",
        description=(
            "nearest: a random atom and its nearest neighbours (minimum image); pairs: a "
            "random atom and its closest neighbour, then the nearest pairs; sphere: a random "
            "centre atom and every molecule whose closest atom is within --radius Å of it "
            "(minimum image), kept whole and numbered by mbe_fragment in order of that "
            "distance (or, with --bodies atoms, every atom within --radius). Molecules are "
            "found by bonding as in `mtt-mbe fragments`, on the periodic frame. Clusters are "
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
        "--size",
        type=at_least(2, "a cluster size"),
        help="atoms per cluster, nearest and pairs only (default: 8)",
    )
    parser.add_argument(
        "--radius",
        type=positive_float,
        help="sphere only, and needed by it: radius (Å) around the centre atom, at most "
        "half the shortest perpendicular width of the cell",
    )
    parser.add_argument(
        "--bodies",
        choices=Constant("data.sampling", "SPHERE_BODIES"),
        metavar="BODIES",
        help="sphere only: %(choices)s (default: molecules)",
    )
    parser.add_argument(
        "--mult",
        type=positive_float,
        help="sphere with molecules only: factor on the covalent radii, as in "
        "`mtt-mbe fragments` (default: 1.3)",
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
    from ...data.io import read_structures, write_structures
    from ...data.sampling import check_options, sample_clusters

    options = {"radius": args.radius, "bodies": args.bodies, "mult": args.mult}
    check_options(args.protocol, args.size, **options)  # before the frames are read
    frames = read_structures(args.bulk)
    clusters = sample_clusters(
        frames, args.protocol, args.size, args.count, args.seed, args.first_id, **options
    )
    write_structures(args.output, clusters)
    print(f"wrote {len(clusters)} clusters to {args.output}")
    return 0
