"""``mtt-mbe study``: the paper's experiments as one file and one command.

A study trains every combination of architectures (each an ``mtt-mbe train``
options file), training compositions (subsets of the training parents selected
by their info, e.g. one density regime), augmentation proportions
(``mbe.proportion``), dataset proportions (the fraction of the training parents
used) and seeds, then
gathers what the runs measured into ``DIR/study.json``, figures in the paper's
layout and a ``report.md`` that states the paper's findings and whether the
study reproduces them.

Steps:

1. :func:`plan_study` validates the study file and every architecture's
   options (one-line errors, before anything is trained), decides one split of
   the parents for the whole study (so every run shares the validation and test
   parents) and writes it to ``DIR/split/``;
2. :func:`execute_run` runs one ordinary ``mtt-mbe train`` in
   ``DIR/runs/ARCH/pP-dD-sS/`` (``DIR/runs/ARCH/COMPOSITION/pP-dD-sS/`` when the
   study names compositions; its options in ``options.yaml`` there), analyses
   the extra evaluation files, measures the full-structure RMSE on the test
   parents and on every group of the extrapolation structures and writes
   ``run.json`` last: a run with a ``run.json`` made from the same options is
   never trained again (resumable after ``kill -9``);
3. :func:`run_study` runs them (``jobs`` at once, or on a Dask cluster) and
   writes the study's outputs, holding ``DIR.running`` meanwhile: one study at a
   time works on a folder, and a killed study's trainings end with it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from ..analysis.study import (
    aggregate,
    dataset_findings,
    extrapolation_findings,
    findings,
    run_record,
)
from ..compute.locks import holding
from ..compute.tasks import die_with_parent, map_tasks
from ..data.io import (
    PARENT_KEY,
    atomic_path,
    describe,
    is_parent,
    read_structures,
    reading_once,
    require_energy,
)
from ..data.sets import check_one_theory
from ..data.shared_split import split_key, write_shared_split
from ..errors import MBEInputError
from .metatrain_checks import check_metatrain_options
from .options import (
    COMPOSITION,
    CUTOFF,
    ExtrapolationOptions,
    OptionsModel,
    check_compositions,
    load_options,
    parse_options,
)
from .set_specs import replacing, rewrite_paths, single_set
from .training import RunPaths, prepare_run

__all__ = ["RunSpec", "StudyOptions", "execute_run", "plan_study", "run_study"]

LOGGER = logging.getLogger(__name__)

#: the compositions of a study that names none: every training parent
DEFAULT_COMPOSITIONS: dict[str, COMPOSITION] = {"all": "all"}


class StudyOptions(OptionsModel):
    """A study file (YAML): the axes of the experiment and its shared split
    (numbers strict, see :class:`~metatrain_mbe.interface.options.OptionsModel`)."""

    architectures: dict[str, str] = Field(
        min_length=1,
        description="name -> `mtt-mbe train` options file; all must read the same parents "
        "(`training_set`) and labelled sub-clusters (`mbe.subclusters`)",
    )
    proportions: list[float] = Field(
        default_factory=lambda: [0.0, 1.0],
        min_length=1,
        description="augmentation proportions: fractions (0..1) of the labelled sub-cluster "
        "sets of the training parents injected (`mbe.proportion`, the paper's Fig. 3-4)",
    )
    dataset_proportions: list[float] = Field(
        default_factory=lambda: [1.0],
        min_length=1,
        description="fractions (0..1] of the training parents used, nested (Fig. 5)",
    )
    compositions: dict[str, COMPOSITION] = Field(
        default_factory=lambda: dict(DEFAULT_COMPOSITIONS),
        min_length=1,
        description="training compositions, name -> `all` (every training parent) or "
        "`{info key: value}`: the training and validation parents of the shared split that "
        "carry it, e.g. `{regime: low}`; the test parents stay those of the split (Fig. 6)",
    )
    grid: Literal["full", "figures"] = Field(
        "full",
        description="`full`: every combination of architectures, compositions, proportions, "
        "dataset proportions and seeds; `figures`: only the runs the findings and figures "
        "use: every composition and proportion at the largest dataset proportion (Fig. 3, 4, "
        "6), and the main composition (the first `all` one) at the smaller dataset "
        "proportions without sub-clusters (the lowest proportion; Fig. 5)",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0],
        description="seeds of each run (metatrain's `seed` and the injection's `mbe.seed`)",
    )
    validation_set: float = Field(
        0.1, ge=0, lt=1, description="fraction of the parents in the shared validation split"
    )
    test_set: float = Field(
        0.1, gt=0, lt=1, description="fraction of the parents in the shared test split"
    )
    split_seed: int = Field(0, description="seed of the shared split")
    stratify_by: str | None = Field(
        None,
        description="parent info key whose groups each get their share of the splits "
        "(default: the options' `mbe.stratify_by`)",
    )
    group_by: str | None = Field(
        None, description="parent info key to group the figures by (default: `stratify_by`)"
    )
    evaluation: list[str] = Field(
        default_factory=list,
        description="extended XYZ files with complete labelled sub-cluster sets of parents "
        "outside the split; when given, the study is judged on them instead of the test "
        "parents",
    )
    overrides: list[str] = Field(
        default_factory=list,
        description="`key=value` overrides applied to every run's options, as `-r` of "
        "`mtt-mbe train` (e.g. `architecture.training.num_epochs=60`)",
    )
    cutoff: CUTOFF = Field(
        None,
        description="distance screening of every run (its `mbe.cutoff`: the injected sets "
        "and the analysis), one R in Å or per order as `3:8,4:6`",
    )
    extrapolation: ExtrapolationOptions = Field(
        default_factory=ExtrapolationOptions, description="see the `extrapolation.*` rows"
    )

    @field_validator("compositions", mode="before")
    @classmethod
    def _selections(cls, value: Any) -> Any:
        return check_compositions(value)

    @field_validator("proportions")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        if any(not 0 <= v <= 1 for v in values):
            raise ValueError("must list fractions in [0, 1]")
        return values

    @field_validator("dataset_proportions")
    @classmethod
    def _positive_fractions(cls, values: list[float]) -> list[float]:
        if any(not 0 < v <= 1 for v in values):
            raise ValueError("must list fractions in (0, 1]: 0 leaves no training parent")
        return values


@dataclass
class RunSpec:
    """One training run of a study (plain data, so that it travels to Dask workers).

    :param options: the complete ``mtt-mbe train`` options, paths absolute.
    :param directory: the run's folder.
    :param evaluation: extra labelled files analysed with the trained model.
    :param inputs: hash of the content of the input files (parents, labelled
        sub-clusters, evaluation and extrapolation files).
    :param composition: name of the run's training composition.
    :param extrapolation: labelled parents outside the split on which the run
        measures its RMSE per group of ``extrapolation_group_by``.
    :param training_values: where the run's training parents lie on the
        ``extrapolation_group_by`` axis (empty when unknown).
    :param digest: hash of ``options``, ``evaluation``, ``inputs`` and, for a
        named composition or with extrapolation files, of those: a finished run
        made with another digest (other options or relabelled data) is trained
        again. A run of a study without either keeps the digest of earlier
        versions.
    """

    name: str
    architecture: str
    proportion: float
    dataset_proportion: float
    seed: int
    options: dict
    directory: str
    evaluation: list[str]
    inputs: str = ""
    composition: str = "all"
    extrapolation: list[str] = field(default_factory=list)
    extrapolation_group_by: str | None = None
    training_values: list[float] = field(default_factory=list)
    digest: str = ""

    def __post_init__(self):
        if not self.digest:
            identity: list = [self.options, self.evaluation, self.inputs]
            if self.composition != "all" or self.extrapolation:
                identity.append([self.composition, self.extrapolation, self.extrapolation_group_by])
            text = json.dumps(identity, sort_keys=True)
            self.digest = hashlib.sha256(text.encode()).hexdigest()[:16]


def load_study(path: str) -> StudyOptions:
    """Read and validate a study file (one-line :class:`MBEInputError`)."""
    return parse_options(load_options(path), path, StudyOptions, prefix="")


def _absolute(paths: list[str]) -> list[str]:
    return [str(Path(p).absolute()) for p in paths]


def plan_study(
    study: StudyOptions, output: str | os.PathLike, source: str = "study"
) -> list[RunSpec]:
    """Validate the study and every architecture's options, write the shared
    split to ``OUTPUT/split/`` and list the runs. Nothing is trained.

    :raises MBEInputError: for a bad study, options file or input structure;
        a new ``output`` is then removed again (some checks need the split).
    """
    output = Path(output).absolute()
    fresh = not output.exists()
    try:
        with reading_once():  # every architecture's preparation and the split read the same files
            return _plan(study, output, source)
    except MBEInputError:
        if fresh:
            shutil.rmtree(output, ignore_errors=True)
        raise


def _plan(study: StudyOptions, output: Path, source: str) -> list[RunSpec]:
    for path in study.evaluation:
        if not Path(path).is_file():
            raise MBEInputError(f"{source}: evaluation: {path}: no such file")
    for path in study.extrapolation.files:
        if not Path(path).is_file():
            raise MBEInputError(f"{source}: extrapolation.files: {path}: no such file")

    overrides = [*study.overrides, *([f"mbe.cutoff={study.cutoff}"] if study.cutoff else [])]
    base = {name: load_options(path, overrides) for name, path in study.architectures.items()}
    data = {
        name: (
            str(single_set(o, "training_set", study.architectures[name])[1].absolute()),
            _absolute(_subclusters_of(o)),
        )
        for name, o in base.items()
    }
    first_name, first = next(iter(data.items()))
    for name, files in data.items():
        if files != first:
            raise MBEInputError(
                f"{source}: architectures: training_set / mbe.subclusters: "
                f"{study.architectures[name]} reads other data than "
                f"{study.architectures[first_name]} (every architecture of a study must read "
                "the same parents and labelled sub-clusters)"
            )
    for arch, options in base.items():  # metatrain's checks of every architecture, in seconds
        parse_options(options.get("mbe"), study.architectures[arch])
        metatrain_options = {key: value for key, value in options.items() if key != "mbe"}
        check_metatrain_options(metatrain_options, study.architectures[arch])
    for arch, options in base.items():  # every options error now, before anything is written
        prepare_run(
            options,
            RunPaths.from_output(output / "model.pt", "."),
            source=study.architectures[arch],
        )
    stratify_by = study.stratify_by or next(iter(base.values())).get("mbe", {}).get("stratify_by")
    if study.extrapolation.training_values and stratify_by is None:
        raise MBEInputError(
            f"{source}: extrapolation.training_values: needs stratify_by (the parents' info "
            "key whose values it names)"
        )
    restricted = {n: s for n, s in study.compositions.items() if isinstance(s, dict)}
    split_files = write_shared_split(
        output / "split",
        first[0],
        first[1],
        {"validation": study.validation_set, "test": study.test_set},
        study.dataset_proportions,
        seed=study.split_seed,
        stratify_by=stratify_by,
        compositions=restricted,
        source=source,
    )
    _check_extrapolation(study.extrapolation, output / "split" / "split.json", first[0], source)

    def options_of(arch: str, name: str, d: float, p: float, seed: int) -> dict:
        composition = name if name in restricted else None
        return _run_options(
            base[arch],
            split_files,
            composition,
            d,
            p,
            seed,
            first[1],
            study.group_by or stratify_by,
        )

    first_arch, largest = next(iter(base)), max(study.dataset_proportions)
    named = study.compositions != DEFAULT_COMPOSITIONS
    trains = _planned(study)
    for name in study.compositions:  # every data set of the study at the most injected
        for d in study.dataset_proportions:
            injected = [p for p in study.proportions if trains(name, d, p)]
            if not injected:  # no run of the grid trains on it
                continue
            try:
                prepare_run(
                    options_of(first_arch, name, d, max(injected), 0),
                    RunPaths.from_output(output / "model.pt", "."),
                    source=study.architectures[first_arch],
                )
            except MBEInputError as error:
                where = (
                    f"compositions.{name} at dataset proportion"
                    if named
                    else "dataset_proportions:"
                )
                raise MBEInputError(f"{source}: {where} {d:g}: {error}") from error
    group_by = study.extrapolation.group_by
    values = {  # where each composition's training parents lie on the extrapolation axis
        name: _training_values(
            split_files[split_key("train", name if name in restricted else None, largest)],
            study.extrapolation,
            stratify_by,
            source,
        )
        for name in study.compositions
    }

    extrapolation = _absolute(study.extrapolation.files)
    inputs = _content_digest([first[0], *first[1], *study.evaluation, *extrapolation])
    runs = []
    for arch in base:
        for composition in study.compositions:
            for dataset_proportion in study.dataset_proportions:
                for proportion in study.proportions:
                    if not trains(composition, dataset_proportion, proportion):
                        continue
                    for seed in study.seeds:
                        run = f"p{proportion:g}-d{dataset_proportion:g}-s{seed}"
                        name = f"{arch}/{composition}/{run}" if named else f"{arch}/{run}"
                        runs.append(
                            RunSpec(
                                name,
                                arch,
                                proportion,
                                dataset_proportion,
                                seed,
                                options_of(arch, composition, dataset_proportion, proportion, seed),
                                str(output / "runs" / name),
                                _absolute(study.evaluation),
                                inputs,
                                composition,
                                extrapolation,
                                group_by,
                                values[composition],
                            )
                        )
    return runs


def _main_composition(study: StudyOptions) -> str:
    """The composition the findings of Fig. 3-5 are judged on: the first
    ``all`` one, else the first."""
    return next(
        (n for n, s in study.compositions.items() if s == "all"), next(iter(study.compositions))
    )


def _planned(study: StudyOptions):
    """Whether the study's ``grid`` trains ``(composition, dataset proportion,
    proportion)``: always with ``full``; with ``figures`` at the largest dataset
    proportion, and at the others for the main composition (the first ``all``
    one, else the first) at the lowest proportion only.

    >>> study = StudyOptions(architectures={"pet": "pet.yaml"}, grid="figures",
    ...     compositions={"both": "all", "low": {"regime": "low"}},
    ...     dataset_proportions=[0.5, 1.0], proportions=[0.0, 1.0])
    >>> planned = _planned(study)
    >>> planned("low", 1.0, 1.0), planned("both", 0.5, 0.0), planned("both", 0.5, 1.0)
    (True, True, False)
    >>> planned("low", 0.5, 0.0)
    False
    """
    largest, lowest = max(study.dataset_proportions), min(study.proportions)
    main = _main_composition(study)

    def planned(composition: str, dataset_proportion: float, proportion: float) -> bool:
        if study.grid == "full" or dataset_proportion == largest:
            return True
        return composition == main and proportion == lowest

    return planned


def _check_extrapolation(
    options: ExtrapolationOptions, split_ids: Path, parents_file: str, source: str
) -> None:
    """Refuse an extrapolation structure that is not a labelled parent (a
    sub-cluster, an isolated atom, no energy), lacks the ``group_by`` info key,
    carries the ``mbe_parent`` id of a parent of the shared split, or is
    labelled at another level of theory (``mbe_theory``) than the parents."""
    split = {pid for ids in json.loads(split_ids.read_text()).values() for pid in ids}
    parent = read_structures(parents_file)[0]
    for path in options.files:
        frames = read_structures(path)
        try:
            check_one_theory([parent, *frames])
        except MBEInputError as error:
            raise MBEInputError(f"{source}: extrapolation.files: {error}") from error
        for atoms in frames:
            if not is_parent(atoms):
                raise MBEInputError(
                    f"{source}: extrapolation.files: {describe(atoms)}: a sub-cluster or an "
                    "isolated atom, not a parent"
                )
            try:
                require_energy(atoms)
            except MBEInputError as error:
                raise MBEInputError(f"{source}: extrapolation.files: {error}") from error
            if options.group_by is not None and options.group_by not in atoms.info:
                raise MBEInputError(
                    f"{source}: extrapolation.group_by: {describe(atoms)}: no info key "
                    f"'{options.group_by}'"
                )
            if PARENT_KEY in atoms.info and int(atoms.info[PARENT_KEY]) in split:
                raise MBEInputError(
                    f"{source}: extrapolation.files: {describe(atoms)}: a parent of the study's "
                    "split (extrapolation parents lie outside it)"
                )


def _training_values(
    train_file: str, options: ExtrapolationOptions, stratify_by: str | None, source: str
) -> list[float]:
    """Where the parents of ``train_file`` lie on the ``group_by`` axis: their
    own ``group_by`` value, else ``training_values`` of their ``stratify_by``
    value; empty when neither is known for every parent."""
    if options.group_by is None:
        return []
    values = set()
    for atoms in read_structures(train_file):
        if options.group_by in atoms.info:
            values.add(float(atoms.info[options.group_by]))
            continue
        if not options.training_values or stratify_by is None:
            return []
        stratum = str(atoms.info[stratify_by])
        if stratum not in options.training_values:
            raise MBEInputError(
                f"{source}: extrapolation.training_values: no value for {stratify_by}={stratum} "
                f"({describe(atoms)})"
            )
        values.add(options.training_values[stratum])
    return sorted(values)


def _content_digest(paths: list[str]) -> str:
    """A hash of the content of ``paths`` (changed labels retrain the runs)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def _subclusters_of(options: dict) -> list[str]:
    files = options.get("mbe", {}).get("subclusters", [])
    return [files] if isinstance(files, str) else list(files)


def _run_options(
    options: dict,
    split_files: dict[str, str],
    composition: str | None,
    dataset_proportion: float,
    proportion: float,
    seed: int,
    subcluster_files: list[str],
    group_by: str | None,
) -> dict:
    """The ``mtt-mbe train`` options of one run: the architecture's options on
    the study's split files (those of a restricted ``composition``, None for
    every training parent), at one proportion and seed."""
    options = json.loads(json.dumps(options))
    spec = options["training_set"]
    old = str(single_set(options, "training_set", "options")[1])
    for name, file in (
        ("training_set", split_files[split_key("train", composition, dataset_proportion)]),
        ("validation_set", split_files[split_key("validation", composition)]),
        ("test_set", split_files["test"]),
    ):
        options[name] = rewrite_paths(spec, replacing(old, file))
    options["seed"] = seed
    mbe = options.setdefault("mbe", {})
    subsets = split_files.get(split_key("subclusters", composition, dataset_proportion))
    subclusters = [subsets] if subsets else subcluster_files
    mbe.update(subclusters=subclusters, proportion=proportion, seed=seed)
    analysis = mbe.setdefault("analysis", {})
    analysis.pop("output", None)
    if group_by is not None:
        analysis["group_by"] = group_by
    return options


def execute_run(spec: RunSpec | dict) -> dict:
    """Train, analyse and measure one run (skipped when already done); returns
    its record (``run.json``), with ``error`` set when the run failed."""
    spec = spec if isinstance(spec, RunSpec) else RunSpec(**spec)
    directory = Path(spec.directory)
    record_file = directory / "run.json"
    if record_file.exists():
        record = json.loads(record_file.read_text())
        if record.get("digest") == spec.digest:
            return {"composition": spec.composition, **record}
        LOGGER.info("%s: options changed since it was trained; training again", spec.name)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    from omegaconf import OmegaConf

    (directory / "options.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(spec.options)))
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    commands = [["train", "options.yaml", "-o", "model.pt", "-e", "extensions"]]
    commands += [
        [
            "analyze",
            path,
            "--model",
            "model.pt",
            "-e",
            "extensions",
            "-o",
            f"evaluation/{Path(path).name.split('.')[0]}",
        ]
        for path in spec.evaluation
    ]
    with open(directory / "run.log", "w") as log:
        for command in commands:
            done = subprocess.run(
                [sys.executable, "-m", "metatrain_mbe", *command],
                cwd=directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=partial(die_with_parent, os.getpid()),  # killed with this process
            )
            if done.returncode != 0:
                return {
                    **_identity(spec),
                    "error": f"`mtt-mbe {' '.join(command)}` failed "
                    f"(exit {done.returncode}); see {directory / 'run.log'}",
                }
    trained = time.perf_counter()
    record = run_record(_identity(spec), directory, spec.extrapolation, spec.extrapolation_group_by)
    record["wall_s"] = time.perf_counter() - start
    record["timings_s"] = {"commands": trained - start, "record": time.perf_counter() - trained}
    with atomic_path(record_file) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1) + "\n")
    return record


def _identity(spec: RunSpec) -> dict:
    return {
        "name": spec.name,
        "architecture": spec.architecture,
        "composition": spec.composition,
        "proportion": spec.proportion,
        "dataset_proportion": spec.dataset_proportion,
        "seed": spec.seed,
        "training_values": spec.training_values,
        "digest": spec.digest,
    }


def run_study(
    study: StudyOptions,
    output: str | os.PathLike,
    *,
    jobs: int = 1,
    scheduler: str | None = None,
    source: str = "study",
) -> dict:
    """Plan, run (or reuse) every run, and write ``study.json``, figures and
    ``report.md`` into ``output``, holding ``OUTPUT.running`` meanwhile (one
    study at a time per folder, see :func:`~metatrain_mbe.compute.locks.holding`).

    :param jobs: runs trained at once on this machine (one thread each).
    :param scheduler: address of a Dask scheduler whose workers run the runs
        instead (they must see ``output`` and the data at the same paths).
    :return: the content of ``study.json``.
    :raises MBEInputError: while another study works on ``output``, for a bad
        study (see :func:`plan_study`), or when runs failed.
    """
    output = Path(output).absolute()
    with holding(output, "study"):
        return _run_study(study, output, jobs, scheduler, source)


def _run_study(
    study: StudyOptions, output: Path, jobs: int, scheduler: str | None, source: str
) -> dict:
    """:func:`run_study` once the folder is held."""
    from ..compute.architectures import family
    from .report.study import write_study_report

    start = time.perf_counter()
    runs = plan_study(study, output, source)
    planned = time.perf_counter()
    records = list(
        map_tasks(
            execute_run,
            [asdict(r) for r in runs],
            workers=jobs,
            scheduler=scheduler,
            threads=True,
            description="study runs",
        )
    )
    order = {r.name: k for k, r in enumerate(runs)}
    records.sort(key=lambda r: order[r["name"]])
    finished = [r for r in records if "error" not in r]
    points = aggregate(finished)
    group_by = study.group_by or study.stratify_by
    families = {r.architecture: family(r.options["architecture"]["name"]) for r in runs}
    compositions = {
        r.composition: {
            "selection": study.compositions[r.composition],
            "training_values": r.training_values,
        }
        for r in runs
    }
    main = _main_composition(study)
    main_points = [p for p in points if p["composition"] == main]
    groups = sorted({g for p in main_points for g in p.get("groups", {})})
    result = {
        "study": study.model_dump(),
        "runs": records,
        "points": points,
        "compositions": compositions,
        "main_composition": main,
        "findings": {group: findings(main_points, families, group) for group in groups}
        if main_points
        else {},
        "findings_by_dataset": dataset_findings(main_points, families),
        "findings_extrapolation": extrapolation_findings(points, families, compositions),
        "group_by": group_by,
    }
    ran = time.perf_counter()
    write_study_report(output, result)
    result["timings_s"] = {
        "plan": planned - start,
        "runs": ran - planned,
        "report": time.perf_counter() - ran,
    }
    with atomic_path(output / "study.json") as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1) + "\n")
    failed = [r for r in records if "error" in r]
    if failed:
        raise MBEInputError(f"{len(failed)} run(s) failed, first: {failed[0]['error']}")
    return result
