"""``mtt-mbe train``: a metatrain run with sub-cluster augmentation and an MBE
analysis of the trained model.

The steps, in order:

1. :func:`prepare_run` validates and strips the ``mbe:`` section, reads the
   parents (the ``training_set`` file, and ``validation_set`` / ``test_set``
   files when given) and the labelled sub-clusters, splits the parents (the
   fractions of ``validation_set`` / ``test_set`` apply to parents; every
   sub-cluster follows its parent), picks the injected sub-cluster sets and
   derives plain metatrain options. Nothing is written; every input error is
   raised here.
2. :func:`write_prepared` writes the data sets (extended XYZ), ``split.json``
   and the derived options next to the model, so that
   ``mtt train <model stem>_options.yaml`` reproduces the run.
3. metatrain's own :func:`metatrain.cli.train.train_model` trains.
4. the MBE analysis of the model runs on the test parents (and
   ``mbe.analysis.parents``) with their labelled sub-clusters.

Derived metatrain sets: ``training_set`` is ``[parents]`` or, with injected
sub-clusters, ``[parents, sub-clusters]`` (batches never mix the two); the
validation and test sets have the same layout (metatrain requires it), the
sub-cluster entry holding every labelled sub-cluster of the injected orders of
their parents. The sub-cluster loss weight (``mbe.subcluster_weight``) repeats
each injected sub-cluster in its file, since metatrain 2026.4.1 weights losses
per target, not per set. The energy baseline ``atomic_baseline: {energy: {Z:
E_1}}`` is set to the reference isolated-atom energies (``mbe.e1_baseline``);
``mbe.fix_e1`` makes the trained model's E_1 equal them (a model setting for
SOAP-BPNN and MACE; for PET an isolated-atom training set, then a shift of the
composition baseline by the residual after training, :mod:`metatrain_mbe.compute.e1_calibration`).
"""

from __future__ import annotations

import copy
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import ase
from ase.data import atomic_numbers, chemical_symbols

from ..analysis import AnalysisSettings
from ..compute.architectures import ARCHITECTURES
from ..compute.architectures import architecture as declared
from ..cutoffs import Cutoffs
from ..data.assembly import DataRequest, assemble_training_data, write_data_sets
from ..data.io import atomic_path
from ..data.splitting import SPLITS
from ..errors import MBEInputError
from .cli.arguments import remove
from .metatrain_checks import check_metatrain_options
from .options import MBEOptions, analysis_settings, parse_options
from .set_specs import label_keys, replacing, rewrite_paths, single_set

__all__ = [
    "PreparedRun",
    "RunPaths",
    "newest_checkpoint",
    "prepare_run",
    "train",
    "write_prepared",
]

#: batches of isolated atoms per epoch when an architecture learns E_1 from data
ISOLATED_ATOM_BATCHES = 20


@dataclass(frozen=True)
class RunPaths:
    """Where a run writes, all derived from the model path ``-o``.

    For ``-o outputs/pet.pt``: the model ``outputs/pet.pt`` (and ``pet.ckpt``),
    the prepared data sets in ``outputs/pet_data/``, the derived metatrain
    options ``outputs/pet_options.yaml`` and the MBE report in
    ``outputs/pet_mbe/`` (unless ``mbe.analysis.output`` says otherwise).
    """

    model: Path
    extensions: Path
    data: Path
    options: Path
    report: Path

    @classmethod
    def from_output(cls, output: str | os.PathLike, extensions: str | os.PathLike) -> RunPaths:
        """The paths of a run writing its model to ``output``."""
        model = Path(output)
        if model.suffix != ".pt":
            model = model.with_name(model.name + ".pt")
        stem = model.parent / model.stem
        return cls(
            model=model,
            extensions=Path(extensions),
            data=Path(f"{stem}_data"),
            options=Path(f"{stem}_options.yaml"),
            report=Path(f"{stem}_mbe"),
        )


@dataclass
class PreparedRun:
    """Everything a run writes before training, and what the analysis needs.

    :param options: plain metatrain options (no ``mbe:`` section).
    :param files: frames per file name of the data directory.
    :param split: sorted parent ids per split (``train``, ``validation``, ``test``).
    :param summary: the content of ``split.json`` (ids, counts, E_1, seed).
    :param analysis_ids: parents analysed after training.
    :param analysis_frames: those parents, their labelled sub-clusters and the
        isolated atoms.
    :param training_parents: the training parents.
    :param settings: settings of the analysis.
    """

    mbe: MBEOptions
    options: dict
    files: dict[str, list[ase.Atoms]]
    split: dict[str, list[int]]
    summary: dict
    analysis_ids: list[int]
    analysis_frames: list[ase.Atoms]
    training_parents: list[ase.Atoms]
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)


def prepare_run(options: dict, paths: RunPaths, source: str = "options") -> PreparedRun:
    """Validate the options and prepare the data sets, writing nothing.

    :param options: ``mtt-mbe train`` options as plain data (metatrain options
        plus the ``mbe:`` section), overrides already merged.
    :param paths: where the run will write.
    :param source: name of the options file, for error messages.
    :raises MBEInputError: for any bad option or input structure.
    """
    options = copy.deepcopy(options)
    mbe = parse_options(options.pop("mbe", None), source)
    check_metatrain_options(options, source)
    train_spec, train_file = single_set(options, "training_set", source)
    energy_key, forces_key = label_keys(train_spec)
    fractions, held_out_files = {}, {}
    for name in ("validation_set", "test_set"):
        value = options.get(name, 0.0 if name == "test_set" else None)
        if value is None:
            raise MBEInputError(f"{source}: {name}: missing (a fraction or a file)")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 <= value < 1:
                raise MBEInputError(f"{source}: {name}: fraction {value} is not in [0, 1)")
            fractions[name.removesuffix("_set")] = float(value)
        else:
            held_out_files[name.removesuffix("_set")] = single_set(options, name, source)[1]
    request = DataRequest(
        training_file=train_file,
        held_out_files=held_out_files,
        fractions=fractions,
        subcluster_files=[Path(path) for path in mbe.subclusters],
        orders=mbe.orders,
        cutoffs=Cutoffs.parse(mbe.cutoff),
        proportion=mbe.proportion,
        stratify_by=mbe.stratify_by,
        seed=mbe.seed if mbe.seed is not None else int(options.get("seed") or 0),
        subcluster_weight=mbe.subcluster_weight,
        isolated_atom_copies=_isolated_atom_copies(options, mbe),
        e1=mbe.e1,
        energy_key=energy_key,
        forces_key=forces_key,
    )
    data = assemble_training_data(request, source)
    derived = _derived_options(options, train_spec, train_file, paths, data, mbe, source)
    analysis_ids = _analysis_ids(mbe, data, source)
    settings = analysis_settings(
        mbe.analysis,
        cutoff=mbe.cutoff,
        group_by=mbe.stratify_by,
        e1=data.e1,
        energy_key=energy_key,
        forces_key=forces_key,
    )
    return PreparedRun(
        mbe,
        derived,
        data.files,
        data.split,
        {**data.summary, "analysed_parents": analysis_ids},
        analysis_ids,
        data.analysis_frames(analysis_ids),
        data.training_parents,
        settings,
    )


def write_prepared(prepared: PreparedRun, paths: RunPaths, source: str = "options") -> None:
    """Write the data sets, ``split.json`` and the derived options (all or nothing)."""
    from omegaconf import OmegaConf

    write_data_sets(paths.data, prepared.files, prepared.summary)
    header = (
        f"# plain metatrain options derived by `mtt-mbe train` from {source};\n"
        f"# `mtt train {paths.options}` reproduces the training\n"
    )
    text = header + OmegaConf.to_yaml(OmegaConf.create(prepared.options))
    with atomic_path(paths.options) as tmp:
        Path(tmp).write_text(text)


def train(
    options: dict,
    paths: RunPaths,
    *,
    restart_from: str | os.PathLike | None = None,
    trust_checkpoint: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    source: str = "options",
) -> dict | None:
    """Prepare, train with metatrain and analyse: the whole ``mtt-mbe train``.

    :param options: metatrain options plus the ``mbe:`` section, as plain data.
    :param paths: output paths (see :class:`RunPaths`).
    :param restart_from: metatrain checkpoint to continue from (see
        :func:`check_restart`).
    :param trust_checkpoint: read ``restart_from`` whole, trusting its pickle.
    :param checkpoint_dir: metatrain's directory for checkpoints and logs
        (default: ``outputs/DATE/TIME`` like ``mtt train``).
    :param source: name of the options file, for messages.
    :return: the analysis report, or None when the analysis is disabled.
    """
    if restart_from is not None:
        check_restart(restart_from, trust_checkpoint)
    prepared = prepare_run(options, paths, source)  # every input error, before metatrain loads

    from metatrain.utils.logging import ROOT_LOGGER, setup_logging

    paths.model.parent.mkdir(parents=True, exist_ok=True)
    created = [path for path in (paths.data, paths.options) if not path.exists()]
    fresh = checkpoint_dir is None
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else new_checkpoint_dir()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    with setup_logging(ROOT_LOGGER, log_file=checkpoint_dir / "train.log", level=logging.INFO):
        try:
            _train_prepared(prepared, paths, checkpoint_dir, restart_from, source)
        except BaseException:  # a failed training leaves nothing it made but checkpoints
            for path in created:
                remove(path)
            if fresh and not any(checkpoint_dir.glob("*.ckpt")):
                _remove_with_empty_parents(checkpoint_dir)
            raise
        return run_analysis(prepared, paths)


def _train_prepared(
    prepared: PreparedRun,
    paths: RunPaths,
    checkpoint_dir: Path,
    restart_from: str | os.PathLike | None,
    source: str,
) -> None:
    """Write the prepared data, train with metatrain, calibrate E_1."""
    from metatrain.cli.train import train_model
    from omegaconf import OmegaConf

    write_prepared(prepared, paths, source)
    counts = ", ".join(f"{name}: {len(frames)}" for name, frames in prepared.files.items())
    logging.info(f"mtt-mbe: prepared {paths.data} ({counts})")
    logging.info(f"mtt-mbe: derived metatrain options {paths.options}")
    start = time.perf_counter()
    train_model(
        OmegaConf.create(prepared.options),
        output=str(paths.model.absolute()),
        extensions=str(paths.extensions),
        checkpoint_dir=str(checkpoint_dir),
        restart_from=restart_from,
    )
    logging.info(f"mtt-mbe: metatrain trained in {time.perf_counter() - start:.1f} s")
    baseline = _calibrated_baseline(prepared)
    if baseline:
        from ..compute.e1_calibration import CALIBRATION_FILE, calibrate_e1

        calibrate_e1(
            paths.model,
            paths.extensions,
            paths.data / CALIBRATION_FILE,
            baseline,
            ARCHITECTURES[prepared.options["architecture"]["name"]],
        )


def check_restart(path: str | os.PathLike, trust: bool = False) -> None:
    """Refuse a ``--restart`` file that is not a metatrain checkpoint (an
    exported model, say), or one whose pickle needs more than metatrain's
    classes (:func:`~metatrain_mbe.compute.checkpoints.check_checkpoint`),
    before any data are prepared.

    :raises MBEInputError: one line naming the file.
    """
    from ..compute.checkpoints import check_checkpoint

    content: object = None
    try:
        with warnings.catch_warnings():  # torch warns of the TorchScript archive it was given
            warnings.simplefilter("ignore")
            content = check_checkpoint(Path(path), trust)
    except MBEInputError:
        raise
    except Exception:  # torch raises many kinds for a file that is no checkpoint
        pass
    if not (isinstance(content, dict) and "architecture_name" in content):
        raise MBEInputError(
            f"--restart {path}: not a metatrain checkpoint (an exported model? --restart "
            "takes the .ckpt that training saves)"
        )


def run_analysis(prepared: PreparedRun, paths: RunPaths) -> dict | None:
    """The post-training hook: MBE analysis of the trained model."""
    analysis = prepared.mbe.analysis
    if not analysis.enabled or not prepared.analysis_ids:
        logging.info("mtt-mbe: no MBE analysis (disabled or no parent to analyse)")
        return None
    from .model_analysis import analyze_model

    report_dir = Path(analysis.output) if analysis.output else paths.report
    start = time.perf_counter()
    report = analyze_model(
        paths.model,
        prepared.analysis_frames,
        report_dir,
        prepared.settings,
        extensions=paths.extensions,
        parent_ids=prepared.analysis_ids,
        training_frames=prepared.training_parents,
        device=None,
    )
    logging.info(
        f"mtt-mbe: MBE analysis of {len(prepared.analysis_ids)} parents in "
        f"{time.perf_counter() - start:.1f} s, report in {report_dir}"
    )
    return report


def _remove_with_empty_parents(directory: Path) -> None:
    """Delete ``directory`` (``outputs/DATE/TIME``), then its parents that are
    left empty (``outputs/DATE``, ``outputs``)."""
    remove(directory)
    for parent in directory.parents:
        if parent == Path(".") or not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()


def new_checkpoint_dir() -> Path:
    """A fresh ``outputs/YYYY-MM-DD/HH-MM-SS[.k]`` directory, as ``mtt train`` makes."""
    base = Path(datetime.now().strftime("outputs/%Y-%m-%d/%H-%M-%S"))
    candidate, k = base, 0
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            k += 1
            candidate = base.with_suffix(f".{k}")


def newest_checkpoint(outputs: Path = Path("outputs")) -> Path | None:
    """The most recent ``outputs/YYYY-MM-DD/HH-MM-SS*/*.ckpt`` (``--restart auto``,
    as ``mtt train``), or None when there is none."""
    pattern = re.compile(r"\d{4}-\d{2}-\d{2}/\d{2}-\d{2}-\d{2}")
    checkpoints = [
        path
        for path in outputs.glob("*/*/*.ckpt")
        if pattern.match(path.parent.relative_to(outputs).as_posix())
    ]
    return max(checkpoints, key=lambda path: path.stat().st_mtime, default=None)


def _derived_options(options, train_spec, train_file, paths, data, mbe, source) -> dict:
    """Plain metatrain options: the data sets of ``data``, E_1 as energy baseline."""
    files, e1 = data.files, data.e1
    derived = {
        key: value
        for key, value in options.items()
        if key not in ("training_set", "validation_set", "test_set")
    }
    for name in SPLITS:
        if f"{name}.xyz" not in files:
            continue
        entries = [
            rewrite_paths(train_spec, replacing(str(train_file), str(paths.data / file)))
            for file in (f"{name}.xyz", f"{name}_subclusters.xyz", f"{name}_isolated.xyz")
            if file in files
        ]
        derived["training_set" if name == "train" else f"{name}_set"] = entries
    architecture = derived.get("architecture", {})
    training = architecture.setdefault("training", {}) if isinstance(architecture, dict) else {}
    if mbe.fix_e1:
        _remove_one_body_term(architecture, mbe, source)
    if (
        mbe.e1_baseline
        and declared(architecture.get("name"))
        and "energy" not in (training.get("atomic_baseline") or {})
    ):
        species = sorted({int(z) for frames in files.values() for a in frames for z in a.numbers})
        known = {atomic_numbers[symbol]: energy for symbol, energy in e1.items()}
        missing = [z for z in species if z not in known]
        if missing:
            raise MBEInputError(
                f"{source}: mbe.e1_baseline: no isolated-atom energy for atomic number(s) "
                f"{missing}; add labelled isolated atoms to mbe.subclusters, set mbe.e1 or "
                "e1_baseline: false"
            )
        baseline = dict(training.get("atomic_baseline") or {})
        baseline["energy"] = {z: known[z] for z in species}
        training["atomic_baseline"] = baseline
    return derived


def _remove_one_body_term(architecture: dict, mbe: MBEOptions, source: str) -> None:
    """Set the model setting that removes the network's own one-body term
    (``Architecture.one_body_setting``, for ``mbe.fix_e1``), with a
    warning when the options set it otherwise (metatrain's default hypers, as
    often copied into options files, do)."""
    if not mbe.e1_baseline:
        raise MBEInputError(
            f"{source}: mbe.fix_e1: needs mbe.e1_baseline (the E_1 the model is fixed to); "
            "set fix_e1: false to let the model find its own"
        )
    known = declared(architecture.get("name"))
    if known is None or known.one_body_setting is None:
        return
    keys, value = known.one_body_setting
    model = architecture.setdefault("model", {})
    *parents, last = keys
    for key in parents:
        model = model.setdefault(key, {})
    if model.get(last, value) != value:
        logging.warning(
            f"mtt-mbe: {source}: architecture.model.{'.'.join(keys)}: {model[last]!r} gives "
            f"the network a one-body term of its own; mbe.fix_e1 sets it to {value!r} (set "
            "mbe.fix_e1: false to keep it)"
        )
    model[last] = value


def _calibrated_baseline(prepared: PreparedRun) -> dict[str, float]:
    """The E_1 (eV by symbol) that ``fix_e1`` calibrates the trained model to
    (its ``atomic_baseline`` for the energy), for the architectures of
    architectures calibrated after training (``Architecture.calibrated``);
    empty when there is nothing to calibrate."""
    architecture = prepared.options.get("architecture", {})
    known = declared(architecture.get("name"))
    if not prepared.mbe.fix_e1 or known is None or not known.calibrated:
        return {}
    baselines = architecture.get("training", {}).get("atomic_baseline")
    baseline = baselines.get("energy") if isinstance(baselines, dict) else None
    if not isinstance(baseline, dict):
        return {}
    return {chemical_symbols[int(z)]: float(energy) for z, energy in baseline.items()}


def _isolated_atom_copies(options: dict, mbe: MBEOptions) -> int:
    """Copies of each isolated atom in the isolated-atom training set: the
    option, else :data:`ISOLATED_ATOM_BATCHES` batches when ``fix_e1`` has no
    model setting for the architecture (PET), else none."""
    if mbe.isolated_atom_copies is not None:
        return mbe.isolated_atom_copies
    architecture = options.get("architecture") or {}
    known = declared(architecture.get("name"))
    if not mbe.fix_e1 or known is None or not known.calibrated:
        return 0
    batch_size = int((architecture.get("training") or {}).get("batch_size") or 16)
    return ISOLATED_ATOM_BATCHES * batch_size


def _analysis_ids(mbe: MBEOptions, data, source: str) -> list[int]:
    """The parents analysed after training: test parents and ``mbe.analysis.parents``."""
    analysis = mbe.analysis
    if not analysis.enabled:
        return []
    unknown = sorted(set(analysis.parents) - set(data.parents))
    if unknown:
        raise MBEInputError(f"{source}: mbe.analysis.parents: no parent with id {unknown[0]}")
    return sorted(set(data.test_parents(analysis.test_parents)) | set(analysis.parents))
