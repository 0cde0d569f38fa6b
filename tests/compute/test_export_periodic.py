"""Exported MBE models given a cluster in a periodic box (how LAMMPS ``boundary
p p p`` and i-PI pass clusters): the isolated cluster's numbers when no atom is
within the interaction range of a periodic image, a one-line refusal otherwise
(:mod:`metatrain_mbe.compute.isolation`)."""

import itertools
import time
import warnings

import ase
import numpy as np
import pytest
import torch
from metatomic.torch import ModelOutput, load_atomistic_model
from metatomic_ase import MetatomicCalculator

from metatrain_mbe.compute.isolation import closest_image
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER, variant_output
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from ..models import architecture_params

#: metatomic's ase calculator symmetrises the (NaN) stress of a cluster
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

SYSTEM = ModelOutput(unit="eV", sample_kind="system")
MBE_OUTPUTS = {ENERGY_BY_ORDER: SYSTEM, variant_output(2): SYSTEM}
#: a sheared cell, every width above 26 Å
TRICLINIC = np.array([[30.0, 0.0, 0.0], [10.0, 28.0, 0.0], [-6.0, 8.0, 27.0]])
#: a hexagonal cell 14 Å apart: its lattice planes are 12.1 Å apart, so a
#: cluster 2 Å across is only ~10 Å from the next cell's slab, yet every image
#: is more than 11 Å (PET's range) from every atom
HEXAGONAL = np.array([[14.0, 0.0, 0.0], [7.0, 7.0 * 3**0.5, 0.0], [0.0, 0.0, 14.0]])

#: a badly reduced cell: its lattice planes across c are 5 Å apart (c - 2a - 2b
#: = (0, 0, 5)), yet every image of the 26 neighbouring cells is > 25 Å away
SKEWED = np.array([[30.0, 0.0, 0.0], [0.0, 30.0, 0.0], [60.0, 60.0, 5.0]])


def export(model, output, *options):
    command = ["export", str(model), "-o", str(output), "-e", str(model.parent / "extensions")]
    assert main(command + list(options)) == 0
    return output


def calculator(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetatomicCalculator(
            str(path), extensions_directory=str(path.parent / "extensions"), check_consistency=True
        )


#: the exports compared: ``--variants 2`` keeps the model's ``energy``,
#: ``--truncate 3 --variants 2`` makes it E_3 (both add ``energy/mbe_2``)
KINDS = {"full": ["--variants", "2"], "truncated": ["--truncate", "3", "--variants", "2"]}


@pytest.fixture(scope="module")
def exported(tiny_models, tmp_path_factory):
    """``exported(name, kind)``: metatomic's ase calculator of the tiny model
    ``name`` exported as ``kind`` (:data:`KINDS`) and the model's interaction
    range (Å), each made once (a model's first call costs seconds of
    TorchScript optimisation, so the quick tests share one)."""
    made = {}

    def make(name, kind="truncated"):
        if (name, kind) not in made:
            directory = tmp_path_factory.mktemp("periodic")
            path = export(tiny_models[name], directory / f"{kind}.pt", *KINDS[kind])
            reach = load_atomistic_model(str(path)).capabilities().interaction_range
            made[name, kind] = calculator(path), reach
        return made[name, kind]

    return make


def results(calc, atoms):
    """energy (eV), forces (eV/Å), ``mbe::energy_by_order`` and ``energy/mbe_2`` (eV)."""
    atoms = atoms.copy()
    atoms.calc = calc
    outputs = calc.run_model(atoms, MBE_OUTPUTS)
    return {
        "energy": np.array([atoms.get_potential_energy()]),
        "forces": atoms.get_forces(),
        "by_order": outputs[ENERGY_BY_ORDER].block().values.detach().numpy(),
        "mbe_2": outputs[variant_output(2)].block().values.detach().numpy(),
    }


def assert_same(periodic, isolated):
    for name in isolated:
        np.testing.assert_allclose(periodic[name], isolated[name], rtol=0, atol=1e-8, err_msg=name)


def in_box(atoms, cell, centre=True):
    """``atoms`` in the periodic ``cell`` (Å), centred in it unless told not to."""
    boxed = atoms.copy()
    boxed.cell = cell
    boxed.pbc = True
    if centre:
        boxed.positions += 0.5 * np.asarray(cell).sum(axis=0) - atoms.positions.mean(axis=0)
    return boxed


def length(value):
    """``value`` as the messages print it (Å, at most 3 decimals)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


def widths(cell):
    """The distances between the lattice planes of ``cell`` (Å)."""
    cell = np.asarray(cell)
    normals = np.cross(np.roll(cell, -1, axis=0), np.roll(cell, -2, axis=0))
    return abs(np.linalg.det(cell)) / np.linalg.norm(normals, axis=1)


def slab_gaps(atoms):
    """(1 - s_k) w_k: the box's widths minus the cluster's extent across them (Å)."""
    spans = np.ptp(atoms.get_scaled_positions(wrap=False), axis=0)
    return (1 - spans) * widths(atoms.cell)


def brute_closest(atoms, reach=4):
    """The smallest distance between an atom and an image of an atom (Å), over
    every translation with components up to ``reach`` cells."""
    positions, cell = atoms.positions, np.asarray(atoms.cell)
    best = np.inf
    for n in itertools.product(range(-reach, reach + 1), repeat=3):
        if n != (0, 0, 0):
            shifted = positions + np.array(n) @ cell
            distances = np.linalg.norm(positions[:, None] - shifted[None], axis=-1)
            best = min(best, distances.min())
    return best


@pytest.mark.parametrize("kind", ["truncated", pytest.param("full", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", architecture_params())
def test_a_cluster_in_a_large_cubic_box_is_the_isolated_cluster(exported, name, kind):
    calc, reach = exported(name, kind)
    atoms = hydrogen_cluster(5, seed=31)
    boxed = in_box(atoms, np.eye(3) * 30.0)
    assert 30.0 > np.ptp(atoms.positions, axis=0).max() + reach
    assert_same(results(calc, boxed), results(calc, atoms))


def test_triclinic_boxes_are_measured_by_their_images(exported):
    calc, reach = exported("pet")
    atoms = hydrogen_cluster(5, seed=32)
    isolated = results(calc, atoms)
    for cell in (TRICLINIC, HEXAGONAL):
        boxed = in_box(atoms, cell)
        assert brute_closest(boxed) > reach
        assert_same(results(calc, boxed), isolated)
    # the hexagonal box passes on its images, not on the gap between its slabs
    assert slab_gaps(in_box(atoms, HEXAGONAL)).min() < reach


def test_a_cluster_across_the_boundary_counts_as_given(exported):
    """Positions are taken as given: a whole cluster sticking out of the cell is
    the isolated cluster; wrapped into the cell, its atoms see each other's
    images across the boundary, and it is refused."""
    calc, reach = exported("pet")
    atoms = hydrogen_cluster(5, seed=33)
    atoms.positions -= atoms.positions.mean(axis=0)  # around the cell's corner
    boxed = in_box(atoms, np.eye(3) * 30.0, centre=False)
    assert_same(results(calc, boxed), results(calc, atoms))
    wrapped = boxed.copy()
    wrapped.wrap()
    with pytest.raises(Exception, match="may be within the interaction range"):
        results(calc, wrapped)


@pytest.mark.parametrize("cell", [np.eye(3) * 12.0, 0.4 * TRICLINIC, np.eye(3) * 3.0, SKEWED])
def test_a_box_too_small_is_refused_in_one_line_with_the_distance(exported, cell):
    calc, reach = exported("pet")
    boxed = in_box(hydrogen_cluster(5, seed=34), cell)
    closest = brute_closest(boxed)
    assert closest <= reach
    # images two cells away are farther than the range: the message names the closest
    measured = (slab_gaps(boxed) + widths(cell) > reach).all()
    neighbouring = brute_closest(boxed, reach=1)  # the closest of the 26 neighbouring cells
    for outputs in ({ENERGY_BY_ORDER: SYSTEM}, {variant_output(2): SYSTEM}, {"energy": SYSTEM}):
        with pytest.raises(Exception) as error:
            calc.run_model(boxed, outputs)
        # the reason, whole on the last line (after TorchScript's traceback)
        reason = str(error.value).strip().splitlines()[-1]
        assert "the many-body expansion needs an isolated cluster" in reason
        assert reason.endswith("or a non-periodic system")
        assert f"interaction range ({length(reach)} Å)" in reason
        assert f"box wider than the cluster's extent plus {length(reach)} Å" in reason
        if measured or neighbouring <= reach:
            assert f"an atom is {length(neighbouring)} Å from a periodic image" in reason
            assert neighbouring == closest or not measured
        else:  # the cell is too narrow to rule out the images farther out
            assert f"neighbouring cells is {length(neighbouring)} Å away" in reason
            assert f"(narrowest width {length(widths(cell).min())} Å) is too small" in reason


def test_closest_image_is_the_brute_force_one_on_random_cells():
    rng = np.random.default_rng(35)
    scripted = torch.jit.script(closest_image)
    reach = 6.0
    for _ in range(150):
        cell = np.diag(rng.uniform(6.0, 16.0, 3)) + rng.uniform(-5.0, 5.0, (3, 3))
        if abs(np.linalg.det(cell)) < 50.0:
            continue
        positions = rng.uniform(-2.0, 2.0, (int(rng.integers(1, 6)), 3)) + rng.uniform(-9, 9, 3)
        closest, farther = scripted(torch.tensor(positions), torch.tensor(cell), reach)
        atoms = ase.Atoms("H" * len(positions), positions=positions, cell=cell, pbc=True)
        truth = brute_closest(atoms, reach=3)
        if farther > reach:  # the 26 neighbouring cells decide
            assert (closest > reach) == (truth > reach)
            if closest <= reach:
                assert closest == pytest.approx(truth, abs=1e-9)
        else:  # refused as too narrow: the box is not wider than the cluster plus the range
            assert (slab_gaps(atoms) <= reach).any()


def test_the_image_check_is_cheap_for_hundreds_of_atoms():
    rng = np.random.default_rng(36)
    directions = rng.normal(size=(400, 3))
    radii = 10.0 * rng.uniform(size=(400, 1)) ** (1 / 3)
    cluster = directions / np.linalg.norm(directions, axis=1, keepdims=True) * radii
    cell = np.eye(3) * 40.0
    scripted = torch.jit.script(closest_image)
    # whole inside the box: the slab gaps prove it isolated, no distance measured
    inside = torch.tensor(cluster + 20.0)
    assert scripted(inside, torch.tensor(cell), 11.0)[0] == float("inf")
    # wrapped around the box's corner: the 26 neighbouring cells are measured
    # (13 distance matrices of 400 x 400)
    wrapped = torch.tensor(np.mod(cluster, 40.0))
    scripted(wrapped, torch.tensor(cell), 11.0)
    start = time.perf_counter()
    closest, farther = scripted(wrapped, torch.tensor(cell), 11.0)
    assert time.perf_counter() - start < 2.0
    assert closest < 11.0 < farther
