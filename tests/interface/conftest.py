"""Shared inputs of the interface tests: small labelled hydrogen data sets and
``mtt-mbe train`` options for tiny models."""

import ase.io
import pytest
import yaml
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import assign_parent_ids, enumerate_subclusters, isolated_atoms

from ..conftest import hydrogen_cluster
from ..models import tiny_hypers

E1_H = -13.6


def lj_hydrogen_label(frames):
    """Label with a smooth Lennard-Jones pair potential plus E1_H per atom."""
    for atoms in frames:
        atoms.calc = LennardJones(sigma=0.74, epsilon=0.2, rc=6.0, smooth=True)
        energy = atoms.get_potential_energy() + E1_H * len(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=atoms.get_forces())
    return frames


@pytest.fixture
def hydrogen_files(tmp_path, monkeypatch):
    """16 labelled 4-atom H parents (ids 100.., regimes high/low), complete labelled
    sub-cluster sets for the first 10 and the isolated atom; cwd is tmp_path."""
    parents = [hydrogen_cluster(4, seed=k) for k in range(16)]
    for k, parent in enumerate(parents):
        parent.info.update(mbe_parent=100 + k, regime="low" if k % 2 else "high")
    assign_parent_ids(parents)
    ase.io.write(tmp_path / "parents.xyz", lj_hydrogen_label(parents), format="extxyz")
    # as `mtt-mbe subclusters --with-parents` writes it: atom, parents, sub-clusters
    copies = [p.copy() for p in parents[:10]]
    subs = lj_hydrogen_label(isolated_atoms(parents) + copies + enumerate_subclusters(parents[:10]))
    ase.io.write(tmp_path / "subclusters.xyz", subs, format="extxyz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train_options(architecture="pet", **mbe):
    training = {"num_epochs": 1, "batch_size": 4, "log_interval": 1, "checkpoint_interval": 10}
    return {
        "seed": 0,
        "base_precision": 64,
        "architecture": {
            "name": architecture,
            "model": tiny_hypers(architecture),
            "training": training,
        },
        "training_set": {"systems": "parents.xyz", "targets": {"energy": {"unit": "eV"}}},
        "validation_set": 0.2,
        "test_set": 0.2,
        "mbe": {
            "subclusters": "subclusters.xyz",
            "proportion": 0.5,
            "stratify_by": "regime",
            **mbe,
        },
    }


def write_yaml(path, options):
    path.write_text(yaml.safe_dump(options))
    return str(path)
