"""Screened, truncated expansions in exported models (``mtt-mbe export
--truncate K --cutoff R``): the family kept inside TorchScript against the
analysis library's over the same cutoffs."""

import math
import zipfile

import ase
import numpy as np
import pytest
import torch
from metatomic.torch import ModelOutput, check_atomistic_model, load_atomistic_model

from metatrain_mbe.analysis import AnalysisSettings, make_evaluator, model_results, parent_plans
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER
from metatrain_mbe.compute.screening import (
    body_distances,
    screened_tuples,
    screened_weights,
    tuple_members,
)
from metatrain_mbe.cutoffs import Cutoffs
from metatrain_mbe.data import assign_parent_ids
from metatrain_mbe.data.fragments import assign_fragments
from metatrain_mbe.expansion import SubsetPlan, order_sums, truncated_energy
from metatrain_mbe.expansion.screening import screened_members
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from ..models import export_pair_potential, export_tiny_model
from .test_export_fragments import calculator, water_cluster

BY_ORDER = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}

#: metatomic's ase calculator symmetrises the (NaN) stress of a cluster
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def an_archive(path):
    """A zip file that passes the command line's model check (never loaded)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", "")
    return path


def export(model, output, *options):
    command = ["export", str(model), "-o", str(output), "-e", str(model.parent / "extensions")]
    assert main(command + list(options)) == 0
    check_atomistic_model(str(output))
    return output


def library(model, parent, max_order, cutoff):
    """The analysis library's result over the screened family of ``parent``."""
    settings = AnalysisSettings(max_order=max_order, cutoffs=Cutoffs.parse(cutoff))
    parents = assign_parent_ids([parent.copy()])
    plans = parent_plans(parents, settings)
    extensions = str(model.parent / "extensions")
    evaluator = make_evaluator(str(model), settings, extensions=extensions)
    return model_results(evaluator, parents, plans)[0]


def energy(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


#: the screening of the exported PET: pairs within 3 Å, triples within 2.6 Å
CUTOFF = "2:3,3:2.6"


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    """The tiny hydrogen PET, its export with ``--truncate 3 --cutoff
    2:3,3:2.6`` and the calculator of that (one, warmed up once)."""
    directory = tmp_path_factory.mktemp("screened")
    inner = export_tiny_model("pet", directory)
    truncated = export(inner, directory / "e3.pt", "--truncate", "3", "--cutoff", CUTOFF)
    return inner, truncated, calculator(truncated)


def test_screened_family_is_the_expansion_library_family():
    """The TorchScript enumeration keeps the sets of ``screened_members``,
    and its weights count the kept supersets of each set."""
    enumerate_ = torch.jit.script(screened_tuples)
    rng = np.random.default_rng(0)
    positions = torch.tensor(rng.uniform(0.0, 7.0, size=(40, 3)))
    distances = body_distances(positions, torch.arange(40), 40)
    cutoffs = Cutoffs.parse("3:3.5,4:2.8")
    low, high = torch.triu_indices(40, 40, offset=1)
    expected = screened_members(
        40, 5, cutoffs, torch.stack([low, high], dim=1), distances[low, high]
    )
    found = enumerate_(distances, [math.inf] + [cutoffs.at(m) for m in range(2, 6)], 5)
    assert [len(t) for t in found] == [len(t) for t in expected[1:]]
    assert len(found[1]) == math.comb(40, 2)  # order 2 not screened
    assert 0 < len(found[3]) < math.comb(40, 4)
    for mine, theirs in zip(found, expected[1:]):
        assert torch.equal(mine, theirs)

    weights = torch.jit.script(screened_weights)(found, 40)
    members = tuple_members(found, 40)
    kept = [tuple(np.flatnonzero(row)) for row in members.numpy()]
    for t in [0, 45, len(kept) - 1, len(found[0]) + len(found[1]) + 3]:
        subset = set(kept[t])
        for m in range(1, 6):
            supersets = sum(len(s) == m and subset <= set(s) for s in kept)
            assert weights[t, m - 1] == (-1) ** (m - len(subset)) * supersets


def test_truncated_screened_energy_equals_the_library(pet):
    """E_3 over a screened family of a 40-atom cluster: energy as the analysis
    library, forces minus its gradient (finite differences)."""
    inner, _, calc = pet
    atoms = hydrogen_cluster(40, seed=11)
    atoms.positions *= 1.6  # 0.14 atoms/Å^3
    result = library(inner, atoms, 3, CUTOFF)
    plan = result.plan
    assert 0 < plan.kept(2) < plan.count(2) and 0 < plan.kept(3) < plan.count(3)
    expected = float(truncated_energy(result.terms.v, plan, 3))

    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(expected, abs=1e-8)
    forces = atoms.get_forces()
    assert np.abs(forces).max() > 1e-3
    # minus the library's Σ_{kept |S|<=3} dV(S)/dr
    subset, atom, _ = plan.atom_rows()
    rows = plan.orders[subset] <= 3
    gradient = torch.zeros((len(atoms), 3), dtype=torch.float64)
    gradient.index_add_(0, atom[rows], result.terms.dv[rows])
    np.testing.assert_allclose(forces, -gradient.numpy(), rtol=0, atol=1e-8)
    delta = 1e-5
    for atom, axis in [(0, 0), (39, 2)]:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * delta
            shifted.append(energy(calc, moved))
        numeric = -(shifted[0] - shifted[1]) / (2 * delta)
        assert forces[atom, axis] == pytest.approx(numeric, abs=1e-5)

    by_order = calc.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block().values[0]
    assert by_order.shape == (3,)
    library_sums = order_sums(result.terms.v, plan)[1:]
    assert torch.allclose(by_order, library_sums, atol=1e-8, rtol=0)


def test_the_cutoffs_are_recorded(tmp_path, pet):
    model = load_atomistic_model(str(pet[1]))
    metadata = model.metadata()
    assert metadata.extra["mbe::cutoffs"] == CUTOFF
    assert f"screened within {CUTOFF} Å" in metadata.name
    assert "R_2 = 3 Å, R_m = 2.6 Å for m >= 3." in " ".join(metadata.description.split())
    assert model.module.cutoffs == [math.inf, 3.0, 2.6]

    inner = pet[0]
    options = ["--max-order", "4", "--cutoff", "3:4"]
    model = load_atomistic_model(str(export(inner, tmp_path / "orders.pt", *options)))
    description = " ".join(model.metadata().description.split())
    assert "R_m = 4 Å for m >= 3; orders below 3 are not screened." in description
    assert model.module.cutoffs == [math.inf, math.inf, 4.0, 4.0]


def test_a_large_cluster_is_expanded_when_screened(pet):
    """No limit of a complete expansion (20 bodies) applies: 200 atoms at
    0.05 atoms/Å^3, about a thousand sub-clusters."""
    _, _, calc = pet
    rng = np.random.default_rng(3)
    atoms = ase.Atoms("H200", positions=rng.uniform(0.0, 16.0, size=(200, 3)))
    by_order = calc.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block().values[0]
    assert by_order.shape == (3,) and torch.isfinite(by_order).all()
    atoms.calc = calc
    assert atoms.get_potential_energy() == pytest.approx(float(by_order.sum()), abs=1e-9)


def test_pair_potential_within_the_cutoff_is_exact(tmp_path):
    """For a pair potential (range 5.5 Å), E_2 screened at 6 Å is the full
    energy, and E_3 equals E_2 (every V(S) of three atoms is zero)."""
    pair = export_pair_potential(tmp_path)
    (tmp_path / "extensions").mkdir()
    e2 = calculator(export(pair, tmp_path / "e2.pt", "--truncate", "2", "--cutoff", "6"))
    e3 = calculator(export(pair, tmp_path / "e3.pt", "--truncate", "3", "--cutoff", "6"))
    atoms = hydrogen_cluster(30, seed=12)
    atoms.positions *= 2.5  # 9 Å across: the cutoff drops pairs
    assert np.ptp(atoms.positions, axis=0).max() > 8
    reference = atoms.copy()
    reference.calc = calculator(pair)
    for calc in (e2, e3):
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(
            reference.get_potential_energy(), abs=1e-10
        )
        np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)
    by_order = e3.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block().values[0]
    assert by_order[2].abs() < 1e-10


def test_molecules_as_bodies_are_screened_by_their_closest_atoms(tmp_path):
    """E_2 over molecules of a water hexamer screened at 2.5 Å (closest
    atoms of two molecules) equals the library's over the same family."""
    inner = export_tiny_model("pet", tmp_path, atomic_types=(1, 8))
    options = ["--bodies", "molecules", "--truncate", "2", "--cutoff", "2.5"]
    screened = calculator(export(inner, tmp_path / "e2.pt", *options))
    atoms = water_cluster(6, seed=1)
    atoms.arrays["mbe_fragment"] = assign_fragments(atoms)
    result = library(inner, atoms, 2, "2.5")
    plan = result.plan
    assert plan.n_bodies == 6 and 0 < plan.kept(2) < plan.count(2)
    assert energy(screened, atoms) == pytest.approx(
        float(truncated_energy(result.terms.v, plan, 2)), abs=1e-8
    )
    complete = SubsetPlan.of_fragments(assign_fragments(atoms), 2)
    assert plan.n_subsets < complete.n_subsets


def test_a_cutoff_without_a_truncation_is_refused_in_one_line(tmp_path, capsys):
    model = an_archive(tmp_path / "model.pt")
    assert main(["export", str(model), "-o", str(tmp_path / "out.pt"), "--cutoff", "3"]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "--truncate" in message and "--cutoff" in message
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize(
    ("cutoff", "reason"),
    [("3:5,4:6", "larger than that of a lower order"), ("abc", "is not a cutoff"), ("-1", "")],
)
def test_a_bad_cutoff_is_refused_in_one_line(tmp_path, capsys, cutoff, reason):
    model = an_archive(tmp_path / "model.pt")
    command = ["export", str(model), "-o", str(tmp_path / "out.pt"), "--truncate", "3"]
    assert main(command + ["--cutoff", cutoff]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "--cutoff" in message and reason in message
