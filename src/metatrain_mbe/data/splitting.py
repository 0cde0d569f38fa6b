"""Train / validation / test splits decided per parent cluster.

A split is a decision about parents (``mbe_parent`` ids): the complete set of
sub-clusters of a parent always follows it, so no sub-cluster of a validation
or test parent can reach the training set.

Parents are split inside groups: one group per value of a stratification info
key (e.g. the density ``regime``) and, separately, parents that have labelled
sub-clusters and parents that do not. Every split thus receives its share of
each regime and its share of the parents with reference sub-cluster labels (the
paper's layout: 8:1:1 of all parents, and 8:1:1 of the labelled ones).

>>> import ase
>>> parents = [ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 1]], info={"mbe_parent": k})
...            for k in range(10)]
>>> split = split_parents(parents, {"validation": 0.2, "test": 0.1}, seed=0)
>>> [len(split[name]) for name in SPLITS]
[7, 2, 1]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import ase
import numpy as np

from ..errors import MBEInputError
from .io import PARENT_KEY, describe

__all__ = ["SPLITS", "group_parents", "route_by_parent", "split_parents", "stratum_of"]

#: the splits, in the order metatrain names them
SPLITS = ("train", "validation", "test")


def stratum_of(atoms: ase.Atoms, key: str | None) -> str:
    """The stratification group of a parent: ``str(info[key])``, or ``"all"``."""
    if key is None:
        return "all"
    if key not in atoms.info:
        raise MBEInputError(f"{describe(atoms)}: field '{key}' (mbe.stratify_by) is missing")
    return str(atoms.info[key])


def group_parents(
    parents: Iterable[ase.Atoms], stratify_by: str | None, labelled: Collection[int] = ()
) -> dict[tuple[bool, str], list[int]]:
    """Parent ids grouped by (has labelled sub-clusters, stratum), ids sorted,
    groups in sorted order (so that seeded shuffles do not depend on file order).
    """
    groups: dict[tuple[bool, str], list[int]] = {}
    for atoms in parents:
        pid = int(atoms.info[PARENT_KEY])
        groups.setdefault((pid in labelled, stratum_of(atoms, stratify_by)), []).append(pid)
    return {key: sorted(groups[key]) for key in sorted(groups)}


def split_parents(
    parents: list[ase.Atoms],
    fractions: dict[str, float],
    *,
    seed: int,
    stratify_by: str | None = None,
    labelled: Collection[int] = (),
) -> dict[str, list[int]]:
    """Split parent ids into ``train`` and the fractional splits of ``fractions``.

    :param parents: parent clusters carrying ``mbe_parent`` ids.
    :param fractions: fraction of parents (0..1) per split name, e.g.
        ``{"validation": 0.1, "test": 0.1}``; the rest is ``train``.
    :param seed: seed of the shuffle; the same inputs and seed give the same split.
    :param stratify_by: parent info key whose values each get their share.
    :param labelled: ids of parents with labelled sub-clusters, split as a group
        of their own.
    :return: sorted parent ids per split (``train`` and every key of ``fractions``).

    In each group of ``n`` parents a split of fraction ``f > 0`` receives
    ``round(f * n)`` parents, but at least one when the group has three or more
    (so small groups of labelled parents still reach validation and test).
    """
    if sum(fractions.values()) >= 1:
        raise MBEInputError(
            f"validation_set + test_set: fractions {dict(fractions)} leave no training parent"
        )
    rng = np.random.default_rng(seed)
    split: dict[str, list[int]] = {name: [] for name in ("train", *fractions)}
    for ids in group_parents(parents, stratify_by, labelled).values():
        order = list(rng.permutation(ids))
        for name, fraction in fractions.items():
            count = int(round(fraction * len(ids)))
            if fraction > 0 and len(ids) >= 3:
                count = max(count, 1)
            split[name] += [int(pid) for pid in order[:count]]
            order = order[count:]
        split["train"] += [int(pid) for pid in order]
    return {name: sorted(ids) for name, ids in split.items()}


def route_by_parent(
    frames: Iterable[ase.Atoms], split: Mapping[str, Collection[int]]
) -> dict[str, list[ase.Atoms]]:
    """Send every structure to the split of its ``mbe_parent``, keeping order.

    :raises MBEInputError: for a structure whose parent is in no split.
    """
    where = {pid: name for name, ids in split.items() for pid in ids}
    routed: dict[str, list[ase.Atoms]] = {name: [] for name in split}
    for atoms in frames:
        pid = atoms.info.get(PARENT_KEY)
        try:
            name = where[int(pid)]
        except (KeyError, TypeError, ValueError) as error:
            raise MBEInputError(
                f"{describe(atoms)}: field '{PARENT_KEY}'={pid} names no parent of the "
                "training, validation or test sets"
            ) from error
        routed[name].append(atoms)
    return routed
