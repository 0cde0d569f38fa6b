"""``mtt-mbe eval``: ``mtt eval`` (metrics and predictions) plus the model's MBE report.

The options file is ``mtt eval``'s, with an optional ``mbe:`` section that is
stripped before metatrain sees it::

    systems: test.xyz          # parents (+ labelled sub-clusters, isolated atoms)
    targets: {energy: {key: energy}}
    mbe:
      max_order: 8             # AnalysisSettings fields: max_order, max_atoms,
      group_by: regime         #   group_by, e1 ({symbol: eV}), energy_key, forces_key
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

from ...data import read_structures
from ...errors import MBEInputError
from ..analysis import AnalysisSettings
from ..model_analysis import analyze_model
from .analyze import add_analysis_arguments, add_model_arguments, print_model_report, settings_from

#: keys of the ``mbe:`` section besides the :class:`AnalysisSettings` fields
_EXTRA_KEYS = {"parents", "training_set", "output"}


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
    from metatrain.cli.eval import eval_model
    from metatrain.utils.io import load_model
    from metatrain.utils.omegaconf import expand_dataset_config
    from omegaconf import OmegaConf

    options = _load_options(args.options)
    mbe = options.pop("mbe", None) or {}
    settings, extra = _merge(args, mbe)
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
    base = Path(extra.get("output") or Path(args.output).parent / "mbe")
    training = extra.get("training_set")
    training_frames = None if training is None else read_structures(training)
    for k, dataset in enumerate(datasets):
        directory = base if len(datasets) == 1 else base.with_name(f"{base.name}_{k}")
        frames = read_structures(dataset["systems"]["read_from"])
        report = analyze_model(
            args.path,
            frames,
            directory,
            _with_keys(settings, dataset),
            extensions=args.extensions,
            parent_ids=extra.get("parents"),
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


def _load_options(path: str) -> dict:
    from omegaconf import OmegaConf

    try:
        options = OmegaConf.to_container(OmegaConf.load(path))
    except (OSError, ValueError) as error:
        raise MBEInputError(f"{path}: cannot read the options ({error})") from error
    if not isinstance(options, dict):
        raise MBEInputError(f"{path}: the options must be a mapping")
    mbe = options.get("mbe") or {}
    fields = {f.name for f in dataclasses.fields(AnalysisSettings)}
    unknown = sorted(set(mbe) - fields - _EXTRA_KEYS)
    if unknown:
        raise MBEInputError(f"{path}: field 'mbe.{unknown[0]}' is not an MBE option")
    return options


def _merge(args: argparse.Namespace, mbe: dict) -> tuple[AnalysisSettings, dict]:
    """AnalysisSettings from the ``mbe:`` section, overridden by explicit flags."""
    parser = args._defaults
    flags = settings_from(args)
    defaults = AnalysisSettings()
    values = {}
    for field in dataclasses.fields(AnalysisSettings):
        given = getattr(flags, field.name)
        values[field.name] = mbe.get(field.name, given) if given == getattr(
            defaults, field.name
        ) else given
    extra = {key: mbe.get(key) for key in _EXTRA_KEYS}
    for key, flag in [("parents", "parents"), ("training_set", "training"),
                      ("output", "mbe_output")]:
        if getattr(args, flag) != parser.get_default(flag):
            extra[key] = getattr(args, flag)
    return AnalysisSettings(**values), extra


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
