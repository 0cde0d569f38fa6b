"""``mtt-mbe bulk``: random bulk hydrogen frames, a stand-in for real bulk data."""

from __future__ import annotations

import argparse

from ...data import write_structures
from ...data.bulk import REGIMES, hydrogen_bulk


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
    parser.add_argument("--regime", choices=sorted(REGIMES), required=True)
    parser.add_argument("-n", "--frames", type=int, default=10, help="number of frames")
    parser.add_argument("--atoms", type=int, default=64, help="atoms per frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True, help="extended XYZ to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate and write the frames."""
    frames = [hydrogen_bulk(args.regime, args.atoms, args.seed + k) for k in range(args.frames)]
    write_structures(args.output, frames)
    print(f"wrote {len(frames)} {args.regime}-density frames to {args.output}")
    return 0
