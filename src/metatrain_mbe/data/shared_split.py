"""One split of the parents shared by many training runs (a study).

Runs compare only when they are validated and tested on the same parents:
:func:`write_shared_split` splits the parents once (per parent, stratified, the
parents with labelled sub-clusters as a group of their own, as
:func:`~.splitting.split_parents` does) and writes the parents of each split to
its own extended XYZ file, labels kept. Each dataset proportion D gets the file
``train-dD.xyz``: a stratified subset of the training parents, nested (a smaller
proportion keeps a subset of the parents of a larger one), and, when D < 1,
``subclusters-dD.xyz``: the labelled sub-clusters of the parents it keeps.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import MBEInputError
from .assembly import InputPools
from .io import atomic_path, parent_id, write_structures
from .splitting import split_parents

__all__ = ["write_shared_split"]


def write_shared_split(
    directory: Path,
    parents_file: str,
    subcluster_files: list[str],
    fractions: dict[str, float],
    dataset_proportions: list[float],
    *,
    seed: int,
    stratify_by: str | None,
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
    :return: file per split name (``validation``, ``test``, ``train-dD``), and
        ``subclusters-dD`` for every dataset proportion D that leaves training
        parents out: the labelled sub-clusters of the other parents and the
        isolated atoms (a run must not name parents it does not have).
    :raises MBEInputError: for bad structures, or when ``directory`` already
        holds the split of other parents, fractions or seed.
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
    ids_file = directory / "split.json"
    if ids_file.exists() and json.loads(ids_file.read_text()) != subsets:
        raise MBEInputError(
            f"{source}: {directory} holds the split of another study (other parents, "
            "fractions or seed); give another output directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, ids in subsets.items():  # written again: the labels may have changed
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
    with atomic_path(ids_file) as tmp:
        Path(tmp).write_text(json.dumps(subsets) + "\n")
    return files
