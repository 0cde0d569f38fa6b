"""``mtt-mbe export``: a TorchScript model with many-body-expansion outputs."""

from __future__ import annotations

import argparse

from .arguments import (
    CUTOFF_HELP,
    Constant,
    add_output,
    at_least,
    cutoffs,
    input_file,
    input_folder,
    model_file,
    positive_float,
    subcluster_calls,
)

__all__ = ["add_parser", "body_orders", "run"]


def body_orders(text: str) -> list[int]:
    """An argument type: comma-separated body orders >= 1 (``2,3,4``), sorted,
    each once."""
    try:
        orders = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a list of body orders such as 2,3,4"
        ) from None
    if orders[0] < 1:
        raise argparse.ArgumentTypeError(f"{orders[0]} is not a body order (>= 1)")
    return orders


def _description() -> str:
    from ...compute.mbe_model import ENERGY_BY_ORDER, variant_output

    return (
        "Wrap an exported metatomic model (SOAP-BPNN, PET, MACE, ...) so that it keeps "
        f"its energy and adds '{ENERGY_BY_ORDER}' (per-order sums of V(S), one row per "
        "system), computed by batching every sub-cluster through the model. With "
        f"--variants 2,3, the model also has the energy variants '{variant_output(2)}' "
        f"and '{variant_output(3)}', the truncated expansions E_2 and E_3, which an "
        "engine selects (ASE variants=, LAMMPS variant/energy, i-PI energy_variant=) "
        "while 'energy' stays the model's; each output is computed only when requested. "
        "With --truncate k, 'energy' itself becomes the k-body truncated expansion E_k. "
        "With --cutoff, the model keeps only the sub-clusters whose bodies are all within "
        "the cutoff of each other (with --variants, --truncate or --max-order; large "
        "clusters then cost in proportion to their size). With "
        "--bodies molecules, the bodies are molecules (bonded atoms, found by the model "
        "in each system) and orders count molecules."
    )


def add_parser(subparsers) -> None:
    """Register ``export``."""
    parser = subparsers.add_parser(
        "export",
        help="export a model with many-body-expansion outputs",
        description=_description,
    )
    parser.add_argument(
        "model",
        type=model_file,
        help="exported metatomic model (model.pt), or metatrain checkpoint (model.ckpt: a "
        "Python pickle, read with torch's restricted unpickler unless --trust-checkpoint)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read a checkpoint whose pickle needs classes outside metatrain's, which "
        "runs code from it: only for a checkpoint whose origin you trust",
    )
    add_output(parser, "file", "file to write", required=True)
    parser.add_argument(
        "-e",
        "--extensions",
        "--extensions-dir",
        type=input_folder,
        help="extensions directory of the model",
    )
    parser.add_argument(
        "--max-order",
        type=at_least(0, "a body order"),
        default=0,
        help="largest body order of the MBE output (0: all)",
    )
    parser.add_argument(
        "--variants",
        type=body_orders,
        metavar="K,...",
        help="add the energy variants 'energy/mbe_K' (the K-body expansion E_K, forces by "
        "autograd) beside the model's 'energy'",
    )
    parser.add_argument(
        "--truncate",
        type=at_least(0, "a body order"),
        default=0,
        metavar="K",
        help="make 'energy' itself the K-body expansion E_K, for an engine that cannot "
        "select a variant (0: the model's energy)",
    )
    parser.add_argument(
        "--cutoff",
        type=cutoffs,
        metavar="R",
        help=f"{CUTOFF_HELP}; needs --variants, --truncate or --max-order, and screens every "
        "output ('mbe::energy_by_order' then stops at --max-order, or at the largest of "
        "--variants and --truncate without it)",
    )
    parser.add_argument(
        "--max-atoms",
        type=at_least(2, "a number of atoms"),
        default=Constant("expansion", "DEFAULT_MAX_ATOMS"),
        help="largest number of bodies expanded completely, 2^N sub-clusters",
    )
    parser.add_argument(
        "--bodies",
        choices=["atoms", "molecules"],
        default="atoms",
        help="bodies of the expansion: atoms, or molecules, found by the model in each "
        "system by bonding as `mtt-mbe fragments` does; orders count bodies",
    )
    parser.add_argument(
        "--mult",
        type=positive_float,
        default=Constant("data.fragments", "DEFAULT_MULT"),
        help="with --bodies molecules: factor on the covalent radii of the bonding rule "
        "(as `mtt-mbe fragments --mult`)",
    )
    parser.add_argument(
        "-m",
        "--metadata",
        type=input_file,
        help="YAML file of model metadata (name, description, authors, references) appended "
        "to the model's, as `mtt export --metadata`; the model always cites the paper and "
        "metatrain-mbe",
    )
    batch = parser.add_argument(
        "--subcluster-batch-size",
        type=subcluster_calls,
        default="auto",
        metavar="N",
        help="sub-clusters per call of the inner model: N, `all` (one call) or `auto` "
        "(default: calls of %(cpu)s on a CPU, several times faster there for hundreds of "
        "sub-clusters, one call on a GPU)",
    )
    # argparse fills %(cpu)s from the action's attributes, only when it shows the help
    vars(batch)["cpu"] = Constant("compute.subcluster_evaluator", "EXPORT_CPU_BATCH_SIZE")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the wrapped model."""
    from ...cutoffs import NEEDS_AN_ORDER
    from ...errors import MBEInputError

    if args.cutoff and not (args.truncate or args.max_order or args.variants):
        raise MBEInputError(NEEDS_AN_ORDER)  # before torch loads
    from ...compute.export import export_mbe_model

    export_mbe_model(
        args.model,
        args.output,
        extensions=args.extensions,
        max_order=args.max_order,
        truncate=args.truncate,
        variants=args.variants or [],
        max_atoms=args.max_atoms,
        bodies=args.bodies,
        mult=args.mult,
        batch_size=args.subcluster_batch_size,
        metadata=args.metadata,
        cutoff=args.cutoff,
        trust_checkpoint=args.trust_checkpoint,
    )
    print(f"wrote {args.output} (extensions in the 'extensions' folder beside it)")
    return 0
