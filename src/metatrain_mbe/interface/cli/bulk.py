"""``mtt-mbe bulk``: random bulk hydrogen frames, a stand-in for real bulk data."""

from __future__ import annotations

import argparse

from .arguments import Constant, add_output, at_least, positive_float


def add_parser(subparsers) -> None:
    """Register ``bulk``."""
    parser = subparsers.add_parser(
        "bulk",
        help="random periodic hydrogen frames (low: molecular 0.46 g/cm³, high: atomic 1.34)",
        description=(
            "Random packings of hydrogen at the paper's two densities, to cut clusters "
            "from when no bulk simulation data is at hand. Not equilibrated: a stand-in."
        ),
    )
    parser.add_argument(
        "--regime",
        choices=Constant("data.bulk", "REGIMES"),
        metavar="REGIME",
        required=True,
        help="density regime: %(choices)s",
    )
    parser.add_argument(
        "-n", "--frames", type=at_least(1, "a number of frames"), default=10, help="frames"
    )
    parser.add_argument(
        "--atoms",
        type=at_least(2, "a number of atoms per frame"),
        default=64,
        help="atoms per frame (even for the molecular low-density regime)",
    )
    parser.add_argument(
        "--density",
        type=positive_float,
        help="mass density in g/cm³ instead of the regime's (e.g. the paper's intermediate "
        "0.720, 0.876, 0.999, 1.14, 1.25); the regime then sets the packing (molecules or "
        "atoms), with minimum distances scaled as the density's cube root",
    )
    parser.add_argument("--seed", type=at_least(0, "a random seed"), default=0, help="random seed")
    add_output(parser, "file", "extended XYZ to write", required=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the frames."""
    from ...data import write_structures
    from ...data.bulk import hydrogen_bulk

    frames = [
        hydrogen_bulk(args.regime, args.atoms, args.seed + k, args.density)
        for k in range(args.frames)
    ]
    write_structures(args.output, frames)
    print(
        f"wrote {len(frames)} {args.regime}-packed frames at {frames[0].info['density']:g} "
        f"g/cm³ to {args.output}"
    )
    return 0
