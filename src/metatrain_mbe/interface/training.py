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
E_1}}`` is set to the reference isolated-atom energies (``mbe.fix_e1``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers

from ..data import read_structures, resolve_e1, write_structures
from ..data.augmentation import injected_subclusters, select_parents, subcluster_sets
from ..data.io import (
    PARENT_KEY,
    atomic_path,
    describe,
    get_forces,
    is_isolated_atom,
    is_subcluster,
    parent_id,
)
from ..data.sets import check_geometry
from ..data.splitting import SPLITS, route_by_parent, split_parents
from ..data.subclusters import assign_parent_ids
from ..errors import MBEInputError
from .analysis import AnalysisSettings
from .options import MBEOptions, parse_mbe_options
from .output import staged_directory

__all__ = ["PreparedRun", "RunPaths", "prepare_run", "train", "write_prepared"]

#: architectures whose ``atomic_baseline`` is fixed to E_1 by default
BASELINE_ARCHITECTURES = ("soap_bpnn", "pet", "experimental.mace")


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
    mbe = parse_mbe_options(options.pop("mbe", None), source)
    seed = mbe.seed if mbe.seed is not None else int(options.get("seed") or 0)

    train_spec, train_file = _single_set(options, "training_set", source)
    energy_key, forces_key = _label_keys(train_spec)
    pools = _Pools()
    pools.add(read_structures(train_file), explicit_ids=False)
    fractions, explicit = {}, {}
    for name in ("validation_set", "test_set"):
        value = options.get(name, 0.0 if name == "test_set" else None)
        if value is None:
            raise MBEInputError(f"{source}: {name}: missing (a fraction or a file)")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not 0 <= value < 1:
                raise MBEInputError(f"{source}: {name}: fraction {value} is not in [0, 1)")
            fractions[name.removesuffix("_set")] = float(value)
        else:
            _, path = _single_set(options, name, source)
            explicit[name.removesuffix("_set")] = pools.add(read_structures(path))
    for path in mbe.subclusters:
        pools.add_labelled(read_structures(path))
    all_parents = pools.checked_parents()

    sets = subcluster_sets(pools.subclusters, all_parents, mbe.orders)
    labelled: dict[int, list[ase.Atoms]] = {}
    for atoms in pools.subclusters:
        labelled.setdefault(int(atoms.info[PARENT_KEY]), []).append(atoms)
    from_file = [p for p in pools.parents if int(p.info[PARENT_KEY]) not in pools.explicit]
    split = split_parents(from_file, fractions, seed=seed, stratify_by=mbe.stratify_by,
                          labelled=labelled)
    for name, ids in explicit.items():
        split[name] = sorted(ids)
    for name in SPLITS:
        split.setdefault(name, [])
    if not split["validation"]:
        raise MBEInputError(f"{source}: validation_set: selects no parent")

    parents = route_by_parent(all_parents, split)
    train_sets = {pid: sets[pid] for pid in split["train"] if pid in sets}
    chosen = select_parents(train_sets, parents["train"], proportion=mbe.proportion,
                            seed=seed, stratify_by=mbe.stratify_by)
    injected = injected_subclusters(train_sets, chosen)

    e1 = resolve_e1(pools.isolated, mbe.e1, energy_key)
    isolated = [_with_zero_forces(atoms, forces_key) for atoms in pools.isolated]
    if mbe.isolated_atom and not isolated:
        raise MBEInputError(
            f"{source}: mbe.isolated_atom: no labelled isolated atom in the input files"
        )

    files = {"train.xyz": parents["train"] + (isolated if mbe.isolated_atom else [])}
    if injected:
        files["train_subclusters.xyz"] = injected * mbe.subcluster_weight
    for name in ("validation", "test"):
        if not split[name]:
            continue
        files[f"{name}.xyz"] = parents[name]
        if injected:
            held_out = [a for pid in split[name] for a in sets.get(pid, [])]
            if not held_out:
                raise MBEInputError(
                    f"{source}: {name}_set: no {name} parent has labelled sub-clusters, so "
                    "the injected sub-clusters cannot be validated and tested; label more "
                    f"parents or raise the {name} fraction"
                )
            files[f"{name}_subclusters.xyz"] = held_out

    derived = _derived_options(options, train_spec, train_file, paths, files, mbe, e1, source)
    analysis_ids = _analysis_ids(mbe, split, labelled, all_parents, source)
    by_id = {int(p.info[PARENT_KEY]): p for p in all_parents}
    analysis_frames = (
        pools.isolated
        + [by_id[pid] for pid in analysis_ids]
        + [a for pid in analysis_ids for a in labelled.get(pid, [])]
    )
    available = sum(len(s) for s in train_sets.values())
    summary = {
        "seed": seed,
        "stratify_by": mbe.stratify_by,
        "proportion": mbe.proportion,
        "orders": mbe.orders,
        **{f"{name}_parents": split[name] for name in SPLITS},
        "injected_parents": chosen,
        "available_subclusters": available,
        "injected_subclusters": len(injected),
        "injected_fraction": len(injected) / available if available else 0.0,
        "subcluster_weight": mbe.subcluster_weight,
        "e1": e1,
        "analysed_parents": analysis_ids,
    }
    settings = AnalysisSettings(
        max_order=mbe.analysis.max_order,
        group_by=mbe.analysis.group_by or mbe.stratify_by,
        e1=e1,
        energy_key=energy_key,
        forces_key=forces_key,
    )
    return PreparedRun(mbe, derived, files, split, summary, analysis_ids, analysis_frames,
                       parents["train"], settings)


def write_prepared(prepared: PreparedRun, paths: RunPaths, source: str = "options") -> None:
    """Write the data sets, ``split.json`` and the derived options (all or nothing)."""
    from omegaconf import OmegaConf

    with staged_directory(paths.data) as stage:
        for name, frames in prepared.files.items():
            write_structures(stage / name, [_labels_as_fields(atoms) for atoms in frames])
        (stage / "split.json").write_text(json.dumps(prepared.summary, indent=1) + "\n")
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
    checkpoint_dir: str | os.PathLike | None = None,
    source: str = "options",
) -> dict | None:
    """Prepare, train with metatrain and analyse: the whole ``mtt-mbe train``.

    :param options: metatrain options plus the ``mbe:`` section, as plain data.
    :param paths: output paths (see :class:`RunPaths`).
    :param restart_from: metatrain checkpoint to continue from.
    :param checkpoint_dir: metatrain's directory for checkpoints and logs
        (default: ``outputs/DATE/TIME`` like ``mtt train``).
    :param source: name of the options file, for messages.
    :return: the analysis report, or None when the analysis is disabled.
    """
    prepared = prepare_run(options, paths, source)  # every input error, before metatrain loads

    from metatrain.cli.train import train_model
    from metatrain.utils.logging import ROOT_LOGGER, setup_logging
    from omegaconf import OmegaConf

    paths.model.parent.mkdir(parents=True, exist_ok=True)
    write_prepared(prepared, paths, source)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else new_checkpoint_dir()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    with setup_logging(ROOT_LOGGER, log_file=checkpoint_dir / "train.log", level=logging.INFO):
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
        return run_analysis(prepared, paths)


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


class _Pools:
    """Structures of all input files sorted into parents, sub-clusters and
    isolated atoms."""

    def __init__(self):
        self.parents: list[ase.Atoms] = []
        self.subclusters: list[ase.Atoms] = []
        self.isolated: list[ase.Atoms] = []
        self.explicit: set[int] = set()

    def _parents_of(self, frames: list[ase.Atoms]) -> list[ase.Atoms]:
        """Keep the sub-clusters and isolated atoms of ``frames``; return the rest."""
        parents = []
        for atoms in frames:
            if is_subcluster(atoms):
                parent_id(atoms)  # present and an integer
                self.subclusters.append(atoms)
            elif is_isolated_atom(atoms) and PARENT_KEY not in atoms.info:
                self.isolated.append(atoms)
            else:
                parents.append(atoms)
        return parents

    def add(self, frames: list[ase.Atoms], explicit_ids: bool = True) -> list[int]:
        """Sort ``frames`` in; returns the ids of its parents. Parents of files
        other than the training file must carry ``mbe_parent`` ids."""
        parents = self._parents_of(frames)
        if explicit_ids:
            for atoms in parents:
                parent_id(atoms)  # present and an integer
        assign_parent_ids(parents)
        ids = [int(p.info[PARENT_KEY]) for p in parents]
        self.parents += parents
        if explicit_ids:
            self.explicit.update(ids)
        return ids

    def add_labelled(self, frames: list[ase.Atoms]) -> None:
        """Sort in a file of labelled sub-clusters. Parents in it (``mtt-mbe
        subclusters --with-parents`` writes them) must repeat a parent of the
        data sets, same id and geometry; they are not added twice."""
        known = {int(p.info[PARENT_KEY]): p for p in self.parents}
        for atoms in self._parents_of(frames):
            pid = parent_id(atoms)
            parent = known.get(pid)
            if parent is None:
                raise MBEInputError(
                    f"{describe(atoms)}: field '{PARENT_KEY}'={pid} names no parent of the "
                    "training, validation or test sets"
                )
            check_geometry(atoms, parent, list(range(len(parent))))

    def checked_parents(self) -> list[ase.Atoms]:
        """All parents, refusing an id used twice across files."""
        return assign_parent_ids(self.parents)


def _single_set(options: dict, name: str, source: str) -> tuple[Any, Path]:
    """The set specification of ``options[name]`` and its structure file."""
    spec = options.get(name)
    if isinstance(spec, list):
        if len(spec) != 1:
            raise MBEInputError(
                f"{source}: {name}: give one set; mtt-mbe builds the list (parents, sub-clusters)"
            )
        spec = spec[0]
    systems = spec.get("systems") if isinstance(spec, dict) else spec
    path = systems.get("read_from") if isinstance(systems, dict) else systems
    if not isinstance(path, str):
        raise MBEInputError(f"{source}: {name}: no structure file (systems.read_from)")
    return spec, Path(path)


def _label_keys(spec: Any) -> tuple[str, str]:
    """The energy and forces keys of a set specification (metatrain's defaults)."""
    target = spec.get("targets", {}).get("energy", {}) if isinstance(spec, dict) else {}
    if not isinstance(target, dict):
        return "energy", "forces"
    forces = target.get("forces", {})
    forces_key = forces.get("key", "forces") if isinstance(forces, dict) else "forces"
    return target.get("key") or "energy", forces_key or "forces"


def _with_file(spec: Any, old: str, new: str) -> Any:
    """``spec`` with every occurrence of the file name ``old`` replaced by ``new``."""
    if isinstance(spec, dict):
        return {key: _with_file(value, old, new) for key, value in spec.items()}
    if isinstance(spec, list):
        return [_with_file(value, old, new) for value in spec]
    return new if spec == old else spec


def _labels_as_fields(atoms: ase.Atoms) -> ase.Atoms:
    """A copy with the calculator's energy and forces moved to ``info`` /
    ``arrays`` (``data.io.write_structures`` writes a copy without its calculator).
    """
    copy_ = atoms.copy()
    results = atoms.calc.results if atoms.calc is not None else {}
    if "energy" in results:
        copy_.info["energy"] = float(results["energy"])
    if "forces" in results:
        copy_.arrays["forces"] = np.asarray(results["forces"], dtype=np.float64)
    return copy_


def _with_zero_forces(atoms: ase.Atoms, forces_key: str) -> ase.Atoms:
    """An isolated atom labelled with its exact zero force when it has none
    (metatrain cannot mix structures with and without forces in one set)."""
    if get_forces(atoms, forces_key) is not None:
        return atoms
    atoms = atoms.copy()
    if forces_key != "forces":
        atoms.arrays[forces_key] = np.zeros((1, 3))
        return atoms
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    if "energy" not in results and "energy" in atoms.info:
        results["energy"] = atoms.info.pop("energy")
    atoms.calc = SinglePointCalculator(atoms, **results, forces=np.zeros((1, 3)))
    return atoms


def _derived_options(options, train_spec, train_file, paths, files, mbe, e1, source) -> dict:
    derived = {key: value for key, value in options.items()
               if key not in ("training_set", "validation_set", "test_set")}
    old = str(train_file)
    for name in SPLITS:
        if f"{name}.xyz" not in files:
            continue
        entries = [
            _with_file(train_spec, old, str(paths.data / file))
            for file in (f"{name}.xyz", f"{name}_subclusters.xyz")
            if file in files
        ]
        derived["training_set" if name == "train" else f"{name}_set"] = entries
    architecture = derived.get("architecture", {})
    training = architecture.setdefault("training", {}) if isinstance(architecture, dict) else {}
    if (
        mbe.fix_e1
        and architecture.get("name") in BASELINE_ARCHITECTURES
        and "energy" not in (training.get("atomic_baseline") or {})
    ):
        species = sorted({int(z) for frames in files.values() for a in frames for z in a.numbers})
        known = {atomic_numbers[symbol]: energy for symbol, energy in e1.items()}
        missing = [z for z in species if z not in known]
        if missing:
            raise MBEInputError(
                f"{source}: mbe.fix_e1: no isolated-atom energy for atomic number(s) {missing}; "
                "add labelled isolated atoms to mbe.subclusters, set mbe.e1 or fix_e1: false"
            )
        baseline = dict(training.get("atomic_baseline") or {})
        baseline["energy"] = {z: known[z] for z in species}
        training["atomic_baseline"] = baseline
    return derived


def _analysis_ids(mbe, split, labelled, all_parents, source) -> list[int]:
    analysis = mbe.analysis
    if not analysis.enabled:
        return []
    known = {int(p.info[PARENT_KEY]) for p in all_parents}
    unknown = sorted(set(analysis.parents) - known)
    if unknown:
        raise MBEInputError(f"{source}: mbe.analysis.parents: no parent with id {unknown[0]}")
    test = {"all": split["test"], "none": [],
            "labelled": [pid for pid in split["test"] if pid in labelled]}
    return sorted(set(test[analysis.test_parents]) | set(analysis.parents))
