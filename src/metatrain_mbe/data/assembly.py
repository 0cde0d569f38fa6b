"""The data sets of a training run, assembled from input files.

Every input file may mix parents, labelled sub-clusters and isolated atoms
(:func:`~.io.is_parent` decides which is which); a file named twice (e.g. as the
training set and as a sub-cluster file) is read once. :func:`assemble_training_data`
sorts them, checks their ids and labels (every structure of a data set has a
finite energy, and finite forces if any), splits the parents (every sub-cluster
follows its parent), picks the injected sub-cluster sets and lays out the files of the
metatrain data sets: ``train.xyz`` (parents), ``train_subclusters.xyz`` (the
injected sets, each repeated ``subcluster_weight`` times), ``train_isolated.xyz``
(copies of the isolated atoms, when asked) and, per held-out split, ``NAME.xyz``,
``NAME_subclusters.xyz`` (every labelled sub-cluster of its parents) and
``NAME_isolated.xyz`` (one copy of each isolated atom). Energies are in eV, forces in eV/Å.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from ..errors import MBEInputError
from ..expansion import Cutoffs
from .augmentation import choose_injected_parents, injected_subclusters, subcluster_sets
from .io import (
    ENERGY_KEY,
    FORCES_KEY,
    PARENT_KEY,
    describe,
    get_forces,
    is_parent,
    is_subcluster,
    parent_id,
    read_structures,
    require_energy,
    source_file,
    staged_directory,
    write_structures,
)
from .sets import check_geometry, resolve_e1
from .splitting import SPLITS, route_by_parent, split_parents
from .subclusters import assign_parent_ids

__all__ = [
    "DataRequest",
    "InputPools",
    "TrainingData",
    "assemble_training_data",
    "check_labels",
    "parents_to_analyse",
    "with_zero_forces",
    "write_data_sets",
]


class InputPools:
    """Structures of all input files sorted into parents, sub-clusters and
    isolated atoms."""

    def __init__(self):
        self.parents: list[ase.Atoms] = []
        self.subclusters: list[ase.Atoms] = []
        self.isolated: list[ase.Atoms] = []
        self.explicit: set[int] = set()
        self._files: set[Path] = set()

    def read(self, path: str | os.PathLike, explicit_ids: bool = True) -> list[int]:
        """:meth:`add` the structures of the file ``path``."""
        self._files.add(Path(path).resolve())
        return self.add(read_structures(path), explicit_ids)

    def read_labelled(self, path: str | os.PathLike) -> None:
        """:meth:`add_labelled` the structures of the file ``path``, unless
        :meth:`read` read it already (it then sorted in its sub-clusters and
        isolated atoms: one file may hold parents and their sub-clusters)."""
        if Path(path).resolve() not in self._files:
            self._files.add(Path(path).resolve())
            self.add_labelled(read_structures(path))

    def _parents_of(self, frames: list[ase.Atoms]) -> list[ase.Atoms]:
        """Keep the sub-clusters and isolated atoms of ``frames``; return the rest."""
        parents = []
        for atoms in frames:
            if is_parent(atoms):
                parents.append(atoms)
            elif is_subcluster(atoms):
                parent_id(atoms)  # present and an integer
                self.subclusters.append(atoms)
            else:
                self.isolated.append(atoms)
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


@dataclass(frozen=True)
class DataRequest:
    """What to read and how to split and augment it.

    :param training_file: parents (and possibly sub-clusters, isolated atoms).
    :param held_out_files: explicit ``validation`` / ``test`` files by split name.
    :param fractions: fraction (0..1) of the training file's parents per
        held-out split name.
    :param subcluster_files: files of labelled sub-clusters and isolated atoms.
    :param orders: sub-cluster sizes to inject (default: 2..N-1).
    :param cutoffs: distance screening of the injected sets (complete with
        respect to the screened family; default: none).
    :param proportion: fraction (0..1) of the available sets injected.
    :param stratify_by: parent info key whose groups each get their share.
    :param seed: seed of the split and the injection.
    :param subcluster_weight: repetitions of each injected sub-cluster.
    :param isolated_atom_copies: copies of each isolated atom in a training set
        of their own (``train_isolated.xyz``; validation and test get one copy);
        0 for no such set.
    :param e1: isolated-atom energies (eV by symbol) overriding the labelled ones.
    :param energy_key: energy label key (eV).
    :param forces_key: forces label key (eV/Å).
    """

    training_file: Path
    held_out_files: dict[str, Path] = field(default_factory=dict)
    fractions: dict[str, float] = field(default_factory=dict)
    subcluster_files: list[Path] = field(default_factory=list)
    orders: list[int] | None = None
    cutoffs: Cutoffs | None = None
    proportion: float = 1.0
    stratify_by: str | None = None
    seed: int = 0
    subcluster_weight: int = 1
    isolated_atom_copies: int = 0
    e1: dict[str, float] = field(default_factory=dict)
    energy_key: str = ENERGY_KEY
    forces_key: str = FORCES_KEY


@dataclass
class TrainingData:
    """The assembled data sets of a run.

    :param files: frames per file name of the data directory.
    :param split: sorted parent ids per split (``train``, ``validation``, ``test``).
    :param summary: the content of ``split.json`` (ids, counts, E_1, seed).
    :param parents: every parent, by id.
    :param labelled: the labelled sub-clusters of each parent, by parent id.
    :param isolated: the isolated atoms of the input files.
    :param e1: isolated-atom energies (eV by symbol).
    """

    files: dict[str, list[ase.Atoms]]
    split: dict[str, list[int]]
    summary: dict
    parents: dict[int, ase.Atoms]
    labelled: dict[int, list[ase.Atoms]]
    isolated: list[ase.Atoms]
    e1: dict[str, float]

    @property
    def training_parents(self) -> list[ase.Atoms]:
        """The parents of the training split."""
        train = set(self.split["train"])
        return [parent for pid, parent in self.parents.items() if pid in train]

    def test_parents(self, which: str) -> list[int]:
        """Ids of the test parents: ``"all"``, ``"labelled"`` (with labelled
        sub-clusters) or ``"none"``."""
        test = self.split["test"]
        return {"all": test, "none": [], "labelled": [p for p in test if p in self.labelled]}[which]

    def analysis_frames(self, ids: list[int]) -> list[ase.Atoms]:
        """The isolated atoms, the parents ``ids`` and their labelled sub-clusters."""
        return (
            self.isolated
            + [self.parents[pid] for pid in ids]
            + [a for pid in ids for a in self.labelled.get(pid, [])]
        )


def assemble_training_data(request: DataRequest, source: str = "options") -> TrainingData:
    """Read, sort, split and augment: the data sets of a run, writing nothing.

    :param source: name of the options file, for error messages.
    :raises MBEInputError: for any bad input structure or an empty split.
    """
    pools = InputPools()
    pools.read(request.training_file, explicit_ids=False)
    explicit = {name: pools.read(path) for name, path in request.held_out_files.items()}
    for path in request.subcluster_files:
        pools.read_labelled(path)
    all_parents = pools.checked_parents()

    sets = subcluster_sets(pools.subclusters, all_parents, request.orders, request.cutoffs)
    labelled: dict[int, list[ase.Atoms]] = {}
    for atoms in pools.subclusters:
        labelled.setdefault(int(atoms.info[PARENT_KEY]), []).append(atoms)
    from_file = [p for p in pools.parents if int(p.info[PARENT_KEY]) not in pools.explicit]
    split = split_parents(
        from_file,
        request.fractions,
        seed=request.seed,
        stratify_by=request.stratify_by,
        labelled=labelled,
    )
    for name, ids in explicit.items():
        split[name] = sorted(ids)
    for name in SPLITS:
        split.setdefault(name, [])
    if not split["validation"]:
        raise MBEInputError(f"{source}: validation_set: selects no parent")

    parents = route_by_parent(all_parents, split)
    train_sets = {pid: sets[pid] for pid in split["train"] if pid in sets}
    chosen = choose_injected_parents(
        train_sets,
        parents["train"],
        proportion=request.proportion,
        seed=request.seed,
        stratify_by=request.stratify_by,
    )
    injected = injected_subclusters(train_sets, chosen)

    e1 = resolve_e1(pools.isolated, request.e1, request.energy_key)
    isolated = [with_zero_forces(atoms, request.forces_key) for atoms in pools.isolated]
    if request.isolated_atom_copies and not isolated:
        raise MBEInputError(
            f"{source}: mbe.isolated_atom_copies: no labelled isolated atom in the input files "
            "(add them to mbe.subclusters, e.g. with `mtt-mbe subclusters`, or set fix_e1: false)"
        )

    files = {"train.xyz": parents["train"]}
    if injected:
        files["train_subclusters.xyz"] = injected * request.subcluster_weight
    if request.isolated_atom_copies:
        files["train_isolated.xyz"] = isolated * request.isolated_atom_copies
    for name in ("validation", "test"):
        if not split[name]:
            continue
        files[f"{name}.xyz"] = parents[name]
        if injected:
            files[f"{name}_subclusters.xyz"] = _held_out_subclusters(sets, split, name, source)
        if request.isolated_atom_copies:
            files[f"{name}_isolated.xyz"] = isolated
    check_labels(
        [atoms for frames in files.values() for atoms in frames],
        request.energy_key,
        request.forces_key,
    )

    available = sum(len(s) for s in train_sets.values())
    summary = {
        "seed": request.seed,
        "stratify_by": request.stratify_by,
        "proportion": request.proportion,
        "orders": request.orders,
        **({"cutoffs": request.cutoffs.by_order} if request.cutoffs else {}),
        **{f"{name}_parents": split[name] for name in SPLITS},
        "injected_parents": chosen,
        "available_subclusters": available,
        "injected_subclusters": len(injected),
        "injected_fraction": len(injected) / available if available else 0.0,
        "subcluster_weight": request.subcluster_weight,
        "isolated_atom_copies": request.isolated_atom_copies,
        "e1": e1,
    }
    by_id = {int(p.info[PARENT_KEY]): p for p in all_parents}
    return TrainingData(files, split, summary, by_id, labelled, pools.isolated, e1)


def check_labels(frames: list[ase.Atoms], energy_key: str, forces_key: str) -> None:
    """Refuse a structure of a data set without a finite energy (eV), or with
    forces (eV/Å) that are not finite, naming its file and frame."""
    for atoms in {id(atoms): atoms for atoms in frames}.values():
        require_energy(atoms, energy_key)
        get_forces(atoms, forces_key)


def _held_out_subclusters(
    sets: dict[int, list[ase.Atoms]], split: dict[str, list[int]], name: str, source: str
) -> list[ase.Atoms]:
    """Every labelled sub-cluster of the parents of the held-out split ``name``."""
    held_out = [a for pid in split[name] for a in sets.get(pid, [])]
    if not held_out:
        raise MBEInputError(
            f"{source}: {name}_set: no {name} parent has labelled sub-clusters, so "
            "the injected sub-clusters cannot be validated and tested; label more "
            f"parents or raise the {name} fraction"
        )
    return held_out


def write_data_sets(
    directory: str | os.PathLike, files: dict[str, list[ase.Atoms]], summary: dict
) -> None:
    """Write every data set and ``split.json`` into ``directory`` (all or nothing)."""
    with staged_directory(directory) as stage:
        for name, frames in files.items():
            write_structures(stage / name, frames)
        (stage / "split.json").write_text(json.dumps(summary, indent=1) + "\n")


def parents_to_analyse(frames: list[ase.Atoms], parent_ids: list[int] | None) -> list[ase.Atoms]:
    """The parents of ``frames`` with ``mbe_parent`` ids (default: frame
    index), restricted to ``parent_ids`` (default: all)."""
    parents = []
    for k, atoms in enumerate(frames):
        if is_parent(atoms):
            atoms.info.setdefault(PARENT_KEY, k)
            parents.append(atoms)
    assign_parent_ids(parents)
    if parent_ids is None:
        if not parents:
            raise MBEInputError(f"{source_file(frames)}: no parent cluster to analyse")
        return parents
    by_id = {int(p.info[PARENT_KEY]): p for p in parents}
    missing = sorted(set(parent_ids) - set(by_id))
    if missing:
        raise MBEInputError(f"{source_file(frames)}: field '{PARENT_KEY}' has no parent {missing}")
    return [by_id[pid] for pid in parent_ids]


def with_zero_forces(atoms: ase.Atoms, forces_key: str = FORCES_KEY) -> ase.Atoms:
    """An isolated atom labelled with its exact zero force when it has none
    (metatrain cannot mix structures with and without forces in one set)."""
    if get_forces(atoms, forces_key) is not None:
        return atoms
    atoms = atoms.copy()
    if forces_key != FORCES_KEY:
        atoms.arrays[forces_key] = np.zeros((1, 3))
        return atoms
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    if ENERGY_KEY not in results and ENERGY_KEY in atoms.info:
        results[ENERGY_KEY] = atoms.info.pop(ENERGY_KEY)
    atoms.calc = SinglePointCalculator(atoms, **results, forces=np.zeros((1, 3)))
    return atoms
