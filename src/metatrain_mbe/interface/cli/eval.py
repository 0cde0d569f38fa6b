"""``mtt-mbe eval``: ``mtt eval`` (metrics and predictions) plus the model's MBE report.

The options file is ``mtt eval``'s, with an optional ``mbe:`` section
(:class:`~metatrain_mbe.interface.options.EvalOptions`, every key in
``docs/analysis.md``) that is validated and stripped before metatrain sees it::

    systems: test.xyz          # parents (+ labelled sub-clusters, isolated atoms)
    targets: {energy: {key: energy}}
    mbe:
      max_order: 8
      group_by: regime
      parents: [0, 3]          # mbe_parent ids (default: all)
      training_set: train.xyz  # for the SOAP distance section
      output: mbe              # report directory (default: mbe/ next to -o)

Command-line flags given explicitly override the ``mbe:`` section.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path

from ...data import parse_e1, read_structures
from ..analysis import AnalysisSettings
from ..model_analysis import analyze_model
from ..options import EvalOptions, load_options, parse_mbe_options
from .analyze import add_analysis_arguments, add_model_arguments, print_model_report


def add_parser(subparsers) -> None:
    """Register ``eval``."""
    parser = subparsers.add_parser(
        "eval",
        help="mtt eval plus the MBE report of the model",
        description=(
            "Run metatrain's `mtt eval` (predictions and metrics), then decompose the "
            "model's predictions on the parents of the evaluation set into body orders "
            "and write the MBE report (see `mtt-mbe analyze --model`)."
        ),
    )
    parser.add_argument("path", help="exported model (.pt)")
    parser.add_argument("options", help="eval options YAML, with an optional `mbe:` section")
    parser.add_argument("-o", "--output", default="output.xyz", help="predictions file")
    parser.add_argument("-b", "--batch-size", type=int, default=1, help="mtt eval batch size")
    parser.add_argument("--check-consistency", action="store_true")
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--mbe-output", help="MBE report directory (default: mbe/ next to -o)")
    add_analysis_arguments(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run, _defaults=parser)


def run(args: argparse.Namespace) -> int:
    """Evaluate with metatrain, then analyse every evaluation set."""
    options = load_options(args.options)
    mbe = _with_flags(parse_mbe_options(options.pop("mbe", None), args.options, EvalOptions),
                      args)
    settings = AnalysisSettings(
        max_order=mbe.max_order,
        max_atoms=mbe.max_atoms,
        group_by=mbe.group_by,
        e1=mbe.e1,
        energy_key=args.energy_key,
        forces_key=args.forces_key,
    )
    from metatrain.cli.eval import eval_model
    from metatrain.utils.io import load_model
    from metatrain.utils.omegaconf import expand_dataset_config
    from omegaconf import OmegaConf

    model = load_model(args.path, extensions_directory=args.extensions)
    predictions = Path(args.output).absolute()
    predictions.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(predictions.parent):  # mtt eval writes into the working directory
        eval_model(
            model,
            OmegaConf.create(_absolute_paths(options, Path.cwd())),
            output=predictions.name,
            batch_size=args.batch_size,
            check_consistency=args.check_consistency,
            warm_up=args.warm_up,
        )
    datasets = expand_dataset_config(OmegaConf.create(options))
    base = Path(mbe.output or Path(args.output).parent / "mbe")
    training_frames = None if mbe.training_set is None else read_structures(mbe.training_set)
    for k, dataset in enumerate(datasets):
        directory = base if len(datasets) == 1 else base.with_name(f"{base.name}_{k}")
        frames = read_structures(dataset["systems"]["read_from"])
        report = analyze_model(
            args.path,
            frames,
            directory,
            _with_keys(settings, dataset),
            extensions=args.extensions,
            parent_ids=mbe.parents or None,
            training_frames=training_frames,
            device=args.device,
        )
        print_model_report(report)
        print(f"wrote the MBE report to {directory}/report.md")
    return 0


def _absolute_paths(options, root: Path):
    """``options`` with every ``read_from`` / ``systems`` file resolved from ``root``
    (metatrain runs in the predictions' directory)."""
    if isinstance(options, dict):
        return {
            key: str(root / value) if key in ("read_from", "systems") and isinstance(value, str)
            else _absolute_paths(value, root)
            for key, value in options.items()
        }
    if isinstance(options, list):
        return [_absolute_paths(item, root) for item in options]
    return options


#: ``mbe:`` keys and the command-line flags that override them
_FLAGS = {
    "max_order": "max_order",
    "max_atoms": "max_atoms",
    "group_by": "group_by",
    "e1": "e1",
    "parents": "parents",
    "training_set": "training",
    "output": "mbe_output",
}


def _with_flags(mbe: EvalOptions, args: argparse.Namespace) -> EvalOptions:
    """The ``mbe:`` section with the explicitly given command-line flags on top."""
    parser = args._defaults
    updates = {key: getattr(args, flag) for key, flag in _FLAGS.items()
               if getattr(args, flag) != parser.get_default(flag)}
    if "e1" in updates:
        updates["e1"] = parse_e1(updates["e1"])
    return mbe.model_copy(update=updates)


def _with_keys(settings: AnalysisSettings, dataset) -> AnalysisSettings:
    """Use the energy and forces keys of the evaluation set's ``energy`` target."""
    target = (dataset.get("targets") or {}).get("energy")
    if not target:
        return settings
    forces = target.get("forces") or {}
    return dataclasses.replace(
        settings,
        energy_key=target.get("key", settings.energy_key),
        forces_key=forces.get("key", settings.forces_key) if forces else settings.forces_key,
    )
