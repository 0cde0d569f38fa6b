"""``mtt-mbe export``: a TorchScript model with many-body-expansion outputs."""

from __future__ import annotations

import argparse

from ...compute.export import export_mbe_model
from ...compute.mbe_model import ENERGY_BY_ORDER
from ...expansion import DEFAULT_MAX_ATOMS


def add_parser(subparsers) -> None:
    """Register ``export``."""
    parser = subparsers.add_parser(
        "export",
        help="export a model with many-body-expansion outputs",
        description=(
            "Wrap an exported metatomic model (SOAP-BPNN, PET, MACE, ...) so that it keeps "
            f"its energy and adds '{ENERGY_BY_ORDER}' (per-order sums of V(S), one row per "
            "system), computed by batching every sub-cluster through the model. With "
            "--truncate k, 'energy' becomes the k-body truncated expansion E_k."
        ),
    )
    parser.add_argument("model", help="exported metatomic model (model.pt)")
    parser.add_argument("-o", "--output", required=True, help="file to write")
    parser.add_argument("-e", "--extensions", help="extensions directory of the model")
    parser.add_argument(
        "--max-order",
        type=int,
        default=0,
        help="largest body order of the MBE output (default: all)",
    )
    parser.add_argument(
        "--truncate",
        type=int,
        default=0,
        metavar="K",
        help="make 'energy' the K-body expansion E_K",
    )
    parser.add_argument(
        "--max-atoms",
        type=int,
        default=DEFAULT_MAX_ATOMS,
        help="largest system expanded completely, 2^N sub-clusters (default %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the wrapped model."""
    export_mbe_model(
        args.model,
        args.output,
        extensions=args.extensions,
        max_order=args.max_order,
        truncate=args.truncate,
        max_atoms=args.max_atoms,
    )
    print(f"wrote {args.output} (extensions in the 'extensions' folder beside it)")
    return 0
