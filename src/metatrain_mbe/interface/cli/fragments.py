"""``mtt-mbe fragments``: declare molecules as bodies, assigned from bonding."""

from __future__ import annotations

import argparse

from .arguments import Constant, add_output, positive_float, structures_file


def _description() -> str:
    from ...data.fragments import BOND_TOLERANCE

    return (
        "Write each structure with the per-atom array mbe_fragment, which makes its "
        "molecules the bodies of the expansion: the connected components of the bonds, "
        "numbered 0 .. K-1 by their lowest atom index. Two atoms are bonded when closer "
        f"than their cutoff mult * (r_i + r_j) (covalent radii, Å) less {BOND_TOLERANCE:.0%}, "
        f"not bonded when farther than it plus {BOND_TOLERANCE:.0%}; a pair in between "
        "that would join two molecules is refused, as are periodic structures, "
        "sub-clusters and structures that have mbe_fragment (without --replace)."
    )


def add_parser(subparsers) -> None:
    """Register ``fragments``."""
    parser = subparsers.add_parser(
        "fragments",
        help="assign molecules (mbe_fragment) to parent clusters from bonding",
        description=_description,
    )
    parser.add_argument("parents", type=structures_file, help="extended XYZ of parent clusters")
    add_output(parser, "file", "extended XYZ to write", required=True)
    parser.add_argument(
        "--mult",
        type=positive_float,
        default=Constant("data.fragments", "DEFAULT_MULT"),
        help="factor on the covalent radii: a bond's cutoff is mult * (r_i + r_j) Å",
    )
    parser.add_argument(
        "--ions",
        type=_symbols,
        default=Constant("data.fragments", "IONS"),
        help="elements whose atoms bond to nothing (each is its own fragment), "
        "comma-separated, or 'none'",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="replace the mbe_fragment a structure has (else it is refused)",
    )
    parser.set_defaults(func=run)


def _symbols(text: str) -> tuple[str, ...]:
    """An argument type: comma-separated element symbols, or ``none``."""
    from ase.data import chemical_symbols

    if text.strip().lower() == "none":
        return ()
    symbols = tuple(s.strip() for s in text.split(","))
    for symbol in symbols:
        if symbol not in chemical_symbols[1:]:
            raise argparse.ArgumentTypeError(f"'{symbol}' is not an element symbol")
    return symbols


def run(args: argparse.Namespace) -> int:
    """Assign and write the fragments."""
    from ...data.io import read_structures, write_structures

    frames = read_structures(args.parents)  # a bad file is reported before torch loads
    from ...data.fragments import fragment_structures

    frames = fragment_structures(frames, args.mult, args.ions, replace=args.replace)
    write_structures(args.output, frames)
    counts = [int(atoms.arrays["mbe_fragment"].max()) + 1 for atoms in frames]
    print(
        f"wrote {len(frames)} structures with {min(counts)} to {max(counts)} fragments "
        f"to {args.output}"
    )
    return 0
