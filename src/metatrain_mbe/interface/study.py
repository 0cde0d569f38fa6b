"""``mtt-mbe study``: the paper's experiments as one file and one command.

A study trains every combination of architectures (each an ``mtt-mbe train``
options file), augmentation proportions (``mbe.proportion``), dataset
proportions (the fraction of the training parents used) and seeds, then
gathers what the runs measured into ``DIR/study.json``, figures in the paper's
layout and a ``report.md`` that states the paper's findings and whether the
study reproduces them.

Steps:

1. :func:`plan_study` validates the study file and every architecture's
   options (one-line errors, before anything is trained), decides one split of
   the parents for the whole study (so every run shares the validation and test
   parents) and writes it to ``DIR/split/``;
2. :func:`execute_run` runs one ordinary ``mtt-mbe train`` in
   ``DIR/runs/ARCH/pP-dD-sS/`` (its options in ``options.yaml`` there), analyses
   the extra evaluation files, measures the full-structure RMSE on the test
   parents and writes ``run.json`` last: a run with a ``run.json`` made from the
   same options is never trained again (resumable after ``kill -9``);
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
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from pydantic import Field, field_validator

from ..analysis.study import aggregate, findings, run_record
from ..compute.locks import holding
from ..compute.tasks import die_with_parent, map_tasks
from ..data.io import atomic_path, reading_once
from ..data.shared_split import write_shared_split
from ..errors import MBEInputError
from .metatrain_checks import check_metatrain_options
from .options import CUTOFF, OptionsModel, load_options, parse_options
from .set_specs import replacing, rewrite_paths, single_set
from .training import RunPaths, prepare_run

__all__ = ["RunSpec", "StudyOptions", "execute_run", "plan_study", "run_study"]

LOGGER = logging.getLogger(__name__)


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
        sub-clusters, evaluation files).
    :param digest: hash of ``options``, ``evaluation`` and ``inputs``: a finished
        run made with another digest (other options or relabelled data) is
        trained again.
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
    digest: str = ""

    def __post_init__(self):
        if not self.digest:
            text = json.dumps([self.options, self.evaluation, self.inputs], sort_keys=True)
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

    :raises MBEInputError: for a bad study, options file or input structure.
    """
    with reading_once():  # every architecture's preparation and the split read the same files
        return _plan(study, Path(output).absolute(), source)


def _plan(study: StudyOptions, output: Path, source: str) -> list[RunSpec]:
    for path in study.evaluation:
        if not Path(path).is_file():
            raise MBEInputError(f"{source}: evaluation: {path}: no such file")

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
    split_files = write_shared_split(
        output / "split",
        first[0],
        first[1],
        {"validation": study.validation_set, "test": study.test_set},
        study.dataset_proportions,
        seed=study.split_seed,
        stratify_by=stratify_by,
        source=source,
    )

    inputs = _content_digest([first[0], *first[1], *study.evaluation])
    runs = []
    for arch, options in base.items():
        for dataset_proportion in study.dataset_proportions:
            for proportion in study.proportions:
                for seed in study.seeds:
                    run_options = _run_options(
                        options,
                        split_files,
                        dataset_proportion,
                        proportion,
                        seed,
                        first[1],
                        study.group_by or stratify_by,
                    )
                    name = f"{arch}/p{proportion:g}-d{dataset_proportion:g}-s{seed}"
                    runs.append(
                        RunSpec(
                            name,
                            arch,
                            proportion,
                            dataset_proportion,
                            seed,
                            run_options,
                            str(output / "runs" / name),
                            _absolute(study.evaluation),
                            inputs,
                        )
                    )
    return runs


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
    dataset_proportion: float,
    proportion: float,
    seed: int,
    subcluster_files: list[str],
    group_by: str | None,
) -> dict:
    """The ``mtt-mbe train`` options of one run: the architecture's options on
    the study's split files, at one proportion and seed."""
    options = json.loads(json.dumps(options))
    spec = options["training_set"]
    old = str(single_set(options, "training_set", "options")[1])
    for name, file in (
        ("training_set", split_files[f"train-d{dataset_proportion:g}"]),
        ("validation_set", split_files["validation"]),
        ("test_set", split_files["test"]),
    ):
        options[name] = rewrite_paths(spec, replacing(old, file))
    options["seed"] = seed
    mbe = options.setdefault("mbe", {})
    subsets = split_files.get(f"subclusters-d{dataset_proportion:g}")
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
            return record
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
    record = run_record(_identity(spec), directory)
    record["wall_s"] = time.perf_counter() - start
    record["timings_s"] = {"commands": trained - start, "record": time.perf_counter() - trained}
    with atomic_path(record_file) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1) + "\n")
    return record


def _identity(spec: RunSpec) -> dict:
    return {
        "name": spec.name,
        "architecture": spec.architecture,
        "proportion": spec.proportion,
        "dataset_proportion": spec.dataset_proportion,
        "seed": spec.seed,
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
    groups = sorted({g for p in points for g in p.get("groups", {})})
    result = {
        "study": study.model_dump(),
        "runs": records,
        "points": points,
        "findings": {group: findings(points, families, group) for group in groups}
        if points
        else {},
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
