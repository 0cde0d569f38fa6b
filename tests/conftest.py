"""Shared fixtures: small clusters labelled with cheap, exact potentials."""

from __future__ import annotations

import ase
import numpy as np
import pytest
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import assign_parent_ids, enumerate_subclusters, isolated_atoms

#: isolated-atom energy (eV) added per atom to the Lennard-Jones labels
E1_AR = -13.0


def random_cluster(n_atoms: int, rng: np.random.Generator, symbol: str = "Ar") -> ase.Atoms:
    """A compact random cluster with no two atoms closer than 0.9 (LJ sigma 1)."""
    positions = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0.0, 1.6 * n_atoms ** (1 / 3), size=3)
        if all(np.linalg.norm(trial - p) > 0.9 for p in positions):
            positions.append(trial)
    return ase.Atoms(symbol * n_atoms, positions=positions)


def lj_label(frames: list[ase.Atoms]) -> list[ase.Atoms]:
    """Label with an unshifted Lennard-Jones pair potential plus E_1 per atom."""
    for atoms in frames:
        atoms.calc = LennardJones(sigma=1.0, epsilon=0.01, rc=100.0, smooth=False)
        energy = atoms.get_potential_energy() + E1_AR * len(atoms)
        forces = atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return frames


@pytest.fixture
def lj_dataset():
    """Three labelled 6-atom parents (regimes low/high/low), all their
    sub-clusters and the isolated atom, as a list of frames."""
    rng = np.random.default_rng(42)
    parents = [random_cluster(6, rng) for _ in range(3)]
    for parent, regime in zip(parents, ["low", "high", "low"]):
        parent.info["regime"] = regime
    assign_parent_ids(parents)
    frames = isolated_atoms(parents) + parents + enumerate_subclusters(parents)
    return lj_label(frames)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Untrained float64 SOAP-BPNN, PET and MACE models for hydrogen, each saved
    once when first used: ``{name: path}``; their extensions are in
    ``path.parent / "extensions"``."""
    from .models import LazyModels, export_tiny_model

    directory = tmp_path_factory.mktemp("models")
    return LazyModels(lambda name: export_tiny_model(name, directory))


def hydrogen_cluster(n_atoms: int, seed: int = 0) -> ase.Atoms:
    """A random compact hydrogen cluster (no two atoms closer than 0.6 Å)."""
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0.0, 1.2 * n_atoms ** (1 / 3), size=3)
        if all(np.linalg.norm(trial - p) > 0.6 for p in positions):
            positions.append(trial)
    return ase.Atoms("H" * n_atoms, positions=positions)
