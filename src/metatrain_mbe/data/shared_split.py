"""One split of the parents shared by many training runs (a study).

Runs compare only when they are validated and tested on the same parents:
:func:`write_shared_split` splits the parents once (per parent, stratified, the
parents with labelled sub-clusters as a group of their own, as
:func:`~.splitting.split_parents` does) and writes the parents of each split to
its own extended XYZ file, labels kept. Each dataset proportion D gets the file
``train-dD.xyz``: a stratified subset of the training parents, nested (a smaller
proportion keeps a subset of the parents of a larger one), and, when D < 1,
``subclusters-dD.xyz``: the labelled sub-clusters of the parents it keeps.

A *composition* restricts the training and validation parents of the shared
split to those whose info carries given values (e.g. ``{"regime": "low"}``):
the test parents stay those of the split, and no parent changes split. Each
restricted composition C gets ``train-cC-dD.xyz`` (the parents of
``train-dD.xyz`` it selects), ``validation-cC.xyz`` and
``subclusters-cC-dD.xyz`` (the isolated atoms and the labelled sub-clusters of
its training and validation parents and of the test parents), so the
sub-clusters a run injects come from its own training parents only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ase
import numpy as np

from ..errors import MBEInputError
from .assembly import InputPools
from .io import atomic_path, describe, parent_id, write_structures
from .splitting import split_parents

__all__ = ["selects", "split_key", "write_shared_split"]


def split_key(kind: str, composition: str | None = None, dataset_proportion: float = 1.0) -> str:
    """The name of a split file (without ``.xyz``): ``kind`` is ``train``,
    ``validation`` or ``subclusters``; ``composition`` is None for the
    unrestricted split.

    >>> split_key("train", None, 0.5), split_key("train", "low", 1.0)
    ('train-d0.5', 'train-clow-d1')
    >>> split_key("validation"), split_key("validation", "low")
    ('validation', 'validation-clow')
    """
    name = kind if composition is None else f"{kind}-c{composition}"
    return name if kind == "validation" else f"{name}-d{dataset_proportion:g}"


def selects(atoms: ase.Atoms, selection: Mapping[str, Any]) -> bool:
    """Whether a parent's info carries every ``key: value`` of ``selection``
    (numbers equal to a relative 1e-9, texts and bools exactly; a number never
    equals a text or a bool). The caller checks that the keys are present."""
    for key, wanted in selection.items():
        value = atoms.info[key]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, str)) or isinstance(wanted, (bool, str)):
            if type(value) is not type(wanted) or value != wanted:
                return False
        elif not isinstance(value, (int, float)) or not math.isclose(value, wanted, rel_tol=1e-9):
            return False
    return True


def write_shared_split(
    directory: Path,
    parents_file: str,
    subcluster_files: list[str],
    fractions: dict[str, float],
    dataset_proportions: list[float],
    *,
    seed: int,
    stratify_by: str | None,
    compositions: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "study",
) -> dict[str, str]:
    """Split the parents of ``parents_file`` once and write the split files.

    :param directory: gets ``validation.xyz``, ``test.xyz``, ``train-dD.xyz``
        and ``split.json`` (the parent ids of each file).
    :param subcluster_files: labelled sub-cluster files; their parents form a
        group of their own in every stratum, so each split gets its share.
    :param fractions: fraction of the parents per held-out split, e.g.
        ``{"validation": 0.1, "test": 0.1}``.
    :param dataset_proportions: fractions (0..1] of the training parents kept.
    :param compositions: the restricted compositions, name -> ``{info key:
        value}`` (see the module docstring); their parent ids go to
        ``compositions.json``.
    :return: file per split name (``validation``, ``test``, ``train-dD``), and
        ``subclusters-dD`` for every dataset proportion D that leaves training
        parents out: the labelled sub-clusters of the other parents and the
        isolated atoms (a run must not name parents it does not have); and the
        files of each composition (:func:`split_key`).
    :raises MBEInputError: for bad structures, when ``directory`` already holds
        the split of other parents, fractions or seed, or for a composition
        naming an info key a training or validation parent lacks or selecting
        no training or no validation parent.
    """
    pools = InputPools()
    pools.read(parents_file, explicit_ids=False)
    for path in subcluster_files:
        pools.read_labelled(path)
    parents = pools.checked_parents()
    labelled = {parent_id(a) for a in pools.subclusters}
    split = split_parents(parents, fractions, seed=seed, stratify_by=stratify_by, labelled=labelled)
    by_id = {parent_id(p): p for p in parents}
    train = [by_id[pid] for pid in split["train"]]
    subsets = {name: split[name] for name in fractions}
    for fraction in dataset_proportions:
        kept = split_parents(
            train,
            {"left_out": 1 - fraction},
            seed=seed,
            stratify_by=stratify_by,
            labelled=labelled,
        )["train"]
        subsets[f"train-d{fraction:g}"] = kept
    chosen = {  # before anything is written: a bad composition writes nothing
        name: _composition(name, selection, subsets, dataset_proportions, by_id, source)
        for name, selection in (compositions or {}).items()
    }
    ids_file = directory / "split.json"
    if ids_file.exists() and json.loads(ids_file.read_text()) != subsets:
        raise MBEInputError(
            f"{source}: {directory} holds the split of another study (other parents, "
            "fractions or seed); give another output directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    parent_files = dict(subsets)
    for selected in chosen.values():
        parent_files.update(selected)
    for name, ids in parent_files.items():  # written again: the labels may have changed
        file = directory / f"{name}.xyz"
        write_structures(file, [by_id[pid] for pid in ids])
        files[name] = str(file)
    for fraction in dataset_proportions:
        left_out = set(split["train"]) - set(subsets[f"train-d{fraction:g}"])
        if left_out:  # the sub-clusters of the parents a run keeps, and the isolated atoms
            members = [a for a in pools.subclusters if parent_id(a) not in left_out]
            file = directory / f"subclusters-d{fraction:g}.xyz"
            write_structures(file, pools.isolated + members)
            files[f"subclusters-d{fraction:g}"] = str(file)
    for name, selected in chosen.items():  # those of its own parents and the test parents
        held = set(selected[split_key("validation", name)]) | set(subsets["test"])
        for fraction in dataset_proportions:
            own = held | set(selected[split_key("train", name, fraction)])
            members = [a for a in pools.subclusters if parent_id(a) in own]
            key = split_key("subclusters", name, fraction)
            write_structures(directory / f"{key}.xyz", pools.isolated + members)
            files[key] = str(directory / f"{key}.xyz")
    with atomic_path(ids_file) as tmp:
        Path(tmp).write_text(json.dumps(subsets) + "\n")
    with atomic_path(directory / "compositions.json") as tmp:
        Path(tmp).write_text(json.dumps(chosen) + "\n")
    return files


def _composition(
    name: str,
    selection: Mapping[str, Any],
    subsets: dict[str, list[int]],
    dataset_proportions: list[float],
    by_id: dict[int, ase.Atoms],
    source: str,
) -> dict[str, list[int]]:
    """The training (per dataset proportion) and validation parents a
    composition selects, by split file name (:func:`split_key`)."""
    field = f"{source}: compositions.{name}"
    pool = {"validation": subsets["validation"]}
    pool |= {f"train-d{d:g}": subsets[f"train-d{d:g}"] for d in dataset_proportions}
    for pid in sorted({pid for ids in pool.values() for pid in ids}):
        missing = [key for key in selection if key not in by_id[pid].info]
        if missing:
            raise MBEInputError(f"{field}: {describe(by_id[pid])}: no info key '{missing[0]}'")
    wanted = ", ".join(f"{key}={value}" for key, value in selection.items())
    chosen = {}
    for kind, fraction in [*(("train", d) for d in dataset_proportions), ("validation", 1.0)]:
        ids = pool["validation" if kind == "validation" else f"train-d{fraction:g}"]
        kept = [pid for pid in ids if selects(by_id[pid], selection)]
        if not kept:
            seen = sorted({str(by_id[p].info[k]) for p in ids for k in selection})
            where = (
                "validation parent"
                if kind == "validation"
                else f"training parent at dataset proportion {fraction:g}"
            )
            raise MBEInputError(
                f"{field}: selects no {where} ({wanted}; the parents hold {', '.join(seen[:6])})"
            )
        chosen[split_key(kind, name, fraction)] = kept
    return chosen
