"""``mtt-mbe eval`` as a function: metatrain's ``mtt eval`` (predictions and
metrics), then the model's MBE report on each evaluation set. The model is
loaded once and serves both."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..analysis import make_evaluator
from ..compute.evaluator import check_atomic_types, load_model
from ..data import read_structures
from ..data.io import ENERGY_KEY, FORCES_KEY
from ..errors import MBEInputError
from .model_analysis import analyze_model
from .options import EvalOptions, analysis_settings
from .set_specs import file_fields, label_keys, rewrite_paths

__all__ = ["evaluate_with_mbe"]


def evaluate_with_mbe(
    path: str | os.PathLike,
    options: dict,
    mbe: EvalOptions | None = None,
    *,
    output: str | os.PathLike = "output.xyz",
    extensions: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 1,
    check_consistency: bool = False,
    warm_up: bool = True,
    energy_key: str = ENERGY_KEY,
    forces_key: str = FORCES_KEY,
) -> dict[Path, dict]:
    """Evaluate an exported model with metatrain and write its MBE reports.

    :param path: exported model (``model.pt``).
    :param options: ``mtt eval`` options (no ``mbe:`` section), as plain data;
        relative file names are read from the working directory, as ``mtt eval``
        reads them.
    :param mbe: the validated ``mbe:`` section (default: all defaults).
    :param output: predictions file of ``mtt eval``; the reports go to ``mbe/``
        beside it unless ``mbe.output`` says otherwise (``mbe_K/`` per set when
        there are several evaluation sets).
    :param batch_size: ``mtt eval`` batch size (structures).
    :param energy_key: energy field (eV) of sets without an ``energy`` target.
    :param forces_key: forces field (eV/Å) of sets without an ``energy`` target.
    :return: each report (the content of its ``report.json``) by directory.
    """
    from metatrain.cli.eval import eval_model
    from metatrain.utils.logging import ROOT_LOGGER, setup_logging
    from metatrain.utils.omegaconf import expand_dataset_config
    from omegaconf import OmegaConf

    mbe = mbe or EvalOptions()
    _check_files(options)
    model = load_model(Path(path), None if extensions is None else Path(extensions))
    datasets = OmegaConf.to_container(
        expand_dataset_config(OmegaConf.create(options)), resolve=True
    )
    assert isinstance(datasets, list)
    systems = [read_structures(dataset["systems"]["read_from"]) for dataset in datasets]
    known = set(model.capabilities().atomic_types)  # refused before mtt eval runs
    check_atomic_types([atoms for frames in systems for atoms in frames], known)
    predictions = Path(output).absolute()
    resolved = OmegaConf.create(rewrite_paths(copy.deepcopy(options), _absolute))
    # mtt eval writes into the predictions' directory; its metrics (RMSE, MAE) are logged
    with (
        _removed_on_error(predictions.parent),
        _working_directory(predictions.parent),
        setup_logging(ROOT_LOGGER, level=logging.INFO),
    ):
        eval_model(
            model,
            resolved,
            output=predictions.name,
            batch_size=batch_size,
            check_consistency=check_consistency,
            warm_up=warm_up,
        )
    settings = analysis_settings(
        mbe, max_atoms=mbe.max_atoms, e1=mbe.e1, energy_key=energy_key, forces_key=forces_key
    )
    evaluator = make_evaluator(model, settings, device=device)
    base = Path(mbe.output or Path(output).parent / "mbe")
    training_frames = None if mbe.training_set is None else read_structures(mbe.training_set)
    reports = {}
    for k, (dataset, frames) in enumerate(zip(datasets, systems, strict=True)):
        directory = base if len(datasets) == 1 else base.with_name(f"{base.name}_{k}")
        if (dataset.get("targets") or {}).get("energy"):
            keys = label_keys(dataset)
            settings = dataclasses.replace(settings, energy_key=keys[0], forces_key=keys[1])
        reports[directory] = analyze_model(
            evaluator,
            frames,
            directory,
            settings,
            parent_ids=mbe.parents or None,
            training_frames=training_frames,
        )
    return reports


def _check_files(spec) -> None:
    """Raise :class:`MBEInputError` for the first file named in the options
    (:func:`~.set_specs.file_fields`) that does not exist."""
    for field, path in file_fields(spec):
        if not Path(path).is_file():
            raise MBEInputError(
                f"{path}: file not found (options field {field or 'of the options'}; "
                f"relative to {Path.cwd()})"
            )


@contextlib.contextmanager
def _removed_on_error(directory: Path) -> Iterator[None]:
    """Create ``directory`` (and missing parents) for the body; if the body
    fails, remove what was created."""
    created = directory
    while not created.parent.exists():
        created = created.parent
    fresh = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if fresh:
            shutil.rmtree(created, ignore_errors=True)
        raise


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Run the body in ``path``, then return to the current directory."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _absolute(path: str) -> str:
    """A file name resolved from the working directory, for metatrain, which
    runs in the predictions' directory."""
    return str(Path.cwd() / path)
