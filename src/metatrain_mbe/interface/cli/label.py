"""``mtt-mbe label``: reference energies and forces, parallel and resumable."""

from __future__ import annotations

import argparse
import json
import sys

from ...errors import MBEInputError
from .arguments import (
    Constant,
    add_output,
    at_least,
    input_folder,
    non_negative_float,
    resumable,
    scheduler,
    structures_file,
)

#: exit code when some structures could not be labelled
FAILED = 3


def add_parser(subparsers) -> None:
    """Register ``label``."""
    parser = subparsers.add_parser(
        "label",
        help="label structures with PySCF or any ase calculator",
        description=(
            "Compute energies (eV) and forces (eV/Å) of every structure, in parallel, "
            "committing each result to a store (SQLite) so that a killed run resumes "
            "where it stopped. Writes the labelled structures to OUTPUT; exits with code "
            f"{FAILED} when some structures failed (they are listed, with the parents "
            "they leave incomplete)."
        ),
    )
    parser.add_argument("structures", type=structures_file, help="extended XYZ to label")
    add_output(parser, "file", "labelled extended XYZ to write", required=True)
    parser.add_argument(
        "--calculator",
        default="pyscf",
        help="'pyscf' (Kohn-Sham DFT) or an ase Calculator class as module:Class. Trusted "
        "input: the module is imported and the class built with --calc-kwargs",
    )
    parser.add_argument(
        "--calc-kwargs", default="{}", help="JSON keyword arguments of the calculator"
    )
    pyscf = parser.add_argument_group("PySCF (the paper's physics by default)")
    pyscf.add_argument(
        "--method",
        choices=Constant("compute.labelling.pyscf_calculator", "METHODS"),
        default="dft",
        help="dft: Kohn-Sham DFT (--xc, --smearing, --spin), energies and forces. Energies "
        "only (the report gives V~(m), not forces; --xc, --smearing, --spin, --grid-level "
        "unused): fci: full configuration interaction, the exact energy in the basis (small "
        "bases such as sto-6g: up to 5e7 determinants); ccsd(t) (quote it in a shell): "
        "UCCSD(T) on the lowest stable UHF, O(N^7), exact for 2 electrons but tenths of an "
        "eV off FCI on near-degenerate clusters; dmrg: DMRG with block2 (pip install "
        "block2), FCI's energy once --bond-dim is large enough, a variational bound below",
    )
    pyscf.add_argument("--xc", default="pbe", help="functional")
    pyscf.add_argument("--basis", default="cc-pvdz", help="basis set")
    pyscf.add_argument(
        "--smearing", type=non_negative_float, default=0.025, help="Gaussian smearing in eV"
    )
    pyscf.add_argument(
        "--spin",
        choices=Constant("compute.labelling.pyscf_calculator", "SPIN_TREATMENTS"),
        default="restricted",
        help="restricted: α = β density in every SCF (RKS), one spin branch for every "
        "structure, as the paper's DFT; unrestricted: UKS, α and β smeared with one Fermi "
        "level (2S not held: sub-clusters can land on spin-polarised branches); fixed: UKS "
        "holding 2S with separate Fermi levels",
    )
    pyscf.add_argument(
        "--unpaired",
        type=at_least(0, "a number of unpaired electrons"),
        metavar="2S",
        help="2S, the unpaired electrons the SCF starts from (held with --spin fixed; "
        "default: the lowest for the electron count)",
    )
    pyscf.add_argument(
        "--grid-level", type=int, choices=range(10), default=3, help="DFT grid level"
    )
    pyscf.add_argument(
        "--bond-dim",
        type=at_least(1, "a bond dimension"),
        metavar="M",
        help="--method dmrg: the final bond dimension (default 250; sweeps 1-4 at M/4 with "
        "noise 1e-4, 5-8 at M/2 with noise 1e-5, then M without noise)",
    )
    pyscf.add_argument(
        "--sweeps",
        type=at_least(9, "a number of sweeps"),
        metavar="N",
        help="--method dmrg: the most sweeps (default 20); they stop once a noiseless sweep "
        "changes the energy by less than 1e-9 Ha, and a label still changing by more than "
        "1e-6 Ha fails",
    )
    pyscf.add_argument(
        "--scratch",
        type=input_folder,
        metavar="DIR",
        help="--method dmrg: where each calculation makes its scratch folder, removed "
        "afterwards (default: the system's temporary folder)",
    )
    parser.add_argument(
        "--workers", type=at_least(1, "a number of processes"), default=1, help="local processes"
    )
    parser.add_argument("--scheduler", type=scheduler, help="Dask distributed scheduler address")
    parser.add_argument("--store", type=resumable("file"), help="SQLite store (default: OUTPUT.db)")
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="compute again what failed before (--overwrite replaces the OUTPUT written then)",
    )
    parser.set_defaults(func=run)


def _calculator(args: argparse.Namespace) -> tuple[str, dict]:
    try:
        kwargs = json.loads(args.calc_kwargs)
    except json.JSONDecodeError as error:
        raise MBEInputError(f"--calc-kwargs: not JSON ({error})") from error
    if not isinstance(kwargs, dict):
        raise MBEInputError("--calc-kwargs: must be a JSON object")
    dmrg = {"bond_dim": args.bond_dim, "sweeps": args.sweeps, "scratch": args.scratch}
    dmrg = {key: value for key, value in dmrg.items() if value is not None}
    if dmrg and (args.calculator != "pyscf" or args.method != "dmrg"):
        flag = "--" + next(iter(dmrg)).replace("_", "-")
        raise MBEInputError(f"{flag}: applies to --method dmrg only")
    if args.calculator == "pyscf":
        kwargs = {
            "xc": args.xc,
            "basis": args.basis,
            "smearing": args.smearing,
            "method": args.method,
            "spin_treatment": args.spin,
            "spin": args.unpaired,
            "grid_level": args.grid_level,
            **dmrg,
            **kwargs,
        }
    return args.calculator, kwargs


def run(args: argparse.Namespace) -> int:
    """Label every structure not in the store yet, then write the output."""
    from ...data.io import PARENT_KEY, describe, read_structures, write_structures

    frames = read_structures(args.structures)  # a bad file is reported before PySCF loads
    from ...compute.labelling import LabelStore, label_structures

    name, kwargs = _calculator(args)
    outcome = label_structures(
        frames,
        name,
        kwargs,
        LabelStore(args.store or f"{args.output}.db"),
        workers=args.workers,
        scheduler=args.scheduler,
        retry_failed=args.retry_failed,
        progress=print,
    )
    write_structures(args.output, outcome.labelled)
    print(f"wrote {len(outcome.labelled)} labelled structures to {args.output}")
    if not outcome.failed:
        return 0
    print(f"{len(outcome.failed)} structures failed:", file=sys.stderr)
    for atoms, error in outcome.failed:
        print(f"  {describe(atoms)}: {error}", file=sys.stderr)
    parents = sorted({int(a.info[PARENT_KEY]) for a, _ in outcome.failed if PARENT_KEY in a.info})
    if parents:
        print(f"incomplete parents (mbe_parent): {parents}", file=sys.stderr)
    return FAILED
