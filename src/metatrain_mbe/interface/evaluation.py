"""``mtt-mbe eval`` as a function: metatrain's ``mtt eval`` (predictions and
metrics), then the model's MBE report on each evaluation set. The model is
loaded once and serves both."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from ..analysis import AnalysisSettings, make_evaluator
from ..compute.evaluator import load_model
from ..data import read_structures
from ..data.io import ENERGY_KEY, FORCES_KEY
from ..data.set_specs import label_keys, rewrite_paths
from .model_analysis import analyze_model
from .options import EvalOptions

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
    :param options: ``mtt eval`` options (no ``mbe:`` section), as plain data.
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
    from metatrain.utils.omegaconf import expand_dataset_config
    from omegaconf import OmegaConf

    mbe = mbe or EvalOptions()
    model = load_model(Path(path), None if extensions is None else Path(extensions))
    predictions = Path(output).absolute()
    predictions.parent.mkdir(parents=True, exist_ok=True)
    resolved = OmegaConf.create(rewrite_paths(copy.deepcopy(options), _absolute))
    with _working_directory(predictions.parent):  # mtt eval writes into it
        eval_model(
            model,
            resolved,
            output=predictions.name,
            batch_size=batch_size,
            check_consistency=check_consistency,
            warm_up=warm_up,
        )
    settings = AnalysisSettings(
        max_order=mbe.max_order,
        max_atoms=mbe.max_atoms,
        group_by=mbe.group_by,
        e1=mbe.e1,
        energy_key=energy_key,
        forces_key=forces_key,
        batch_size=mbe.batch_size,
        batch_layout=mbe.batch_layout,
    )
    evaluator = make_evaluator(model, settings, device=device)
    datasets = OmegaConf.to_container(
        expand_dataset_config(OmegaConf.create(options)), resolve=True
    )
    assert isinstance(datasets, list)
    base = Path(mbe.output or Path(output).parent / "mbe")
    training_frames = None if mbe.training_set is None else read_structures(mbe.training_set)
    reports = {}
    for k, dataset in enumerate(datasets):
        directory = base if len(datasets) == 1 else base.with_name(f"{base.name}_{k}")
        if (dataset.get("targets") or {}).get("energy"):
            keys = label_keys(dataset)
            settings = dataclasses.replace(settings, energy_key=keys[0], forces_key=keys[1])
        reports[directory] = analyze_model(
            evaluator,
            read_structures(dataset["systems"]["read_from"]),
            directory,
            settings,
            parent_ids=mbe.parents or None,
            training_frames=training_frames,
        )
    return reports


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
