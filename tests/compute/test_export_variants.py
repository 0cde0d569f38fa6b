"""Energy variants of exported models (``mtt-mbe export --variants 2,3``): one
file whose ``energy`` is the model's and whose ``energy/mbe_K`` are the
truncated expansions E_K, against the analysis library's E_K."""

import warnings

import numpy as np
import pytest
import torch
from metatomic.torch import ModelOutput, check_atomistic_model, load_atomistic_model
from metatomic_ase import MetatomicCalculator

from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER, variant_output
from metatrain_mbe.data.fragments import assign_fragments
from metatrain_mbe.expansion import truncated_energy
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from ..models import architecture_params, export_pair_potential, export_tiny_model
from .test_export_fragments import water_cluster
from .test_export_screening import an_archive, library

#: metatomic's ase calculator symmetrises the (NaN) stress of a cluster
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

SYSTEM = ModelOutput(unit="eV", sample_kind="system")


def export(model, output, *options):
    command = ["export", str(model), "-o", str(output), "-e", str(model.parent / "extensions")]
    assert main(command + list(options)) == 0
    check_atomistic_model(str(output))
    return output


def calculator(path, variant=None):
    """metatomic's ase calculator of ``path``, its energy the ``variant``
    (``mbe_2``, ...) or the model's ``energy``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetatomicCalculator(
            str(path),
            extensions_directory=str(path.parent / "extensions"),
            check_consistency=True,
            variants={"energy": variant},
        )


def energy_and_forces(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


def finite_difference_forces(calc, atoms, entries, delta=1e-5):
    """-dE/dr at ``entries`` ((atom, axis) pairs), central differences (eV/Å)."""
    forces = []
    for atom, axis in entries:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * delta
            shifted.append(energy_and_forces(calc, moved)[0])
        forces.append(-(shifted[0] - shifted[1]) / (2 * delta))
    return np.array(forces)


@pytest.fixture(scope="module")
def pet(tmp_path_factory):
    """The tiny hydrogen PET and its export with ``--variants 2,3``."""
    directory = tmp_path_factory.mktemp("variants")
    inner = export_tiny_model("pet", directory)
    return inner, export(inner, directory / "mbe.pt", "--variants", "3,2")


def test_capabilities_list_the_energy_and_described_variants(pet):
    inner, path = pet
    model = load_atomistic_model(str(path))
    outputs = model.capabilities().outputs
    original = load_atomistic_model(str(inner)).capabilities().outputs
    variants = {variant_output(2), variant_output(3)}
    assert variants == {"energy/mbe_2", "energy/mbe_3"}
    assert set(outputs) == set(original) | variants | {ENERGY_BY_ORDER}
    for k in (2, 3):
        output = outputs[variant_output(k)]
        assert output.unit == "eV" and output.sample_kind == original["energy"].sample_kind
        assert output.description.startswith(f"many-body expansion truncated at {k} atoms: E_{k}")
        assert output.description.endswith("(eV)")
    assert outputs["energy"].description == "the model's energy, every body order (eV)"
    assert "energy variants mbe_2, mbe_3" in model.metadata().name
    assert "computed only when requested" in model.metadata().description


@pytest.mark.parametrize("name", architecture_params())
def test_variants_are_the_truncated_expansion_of_the_analysis(tmp_path, tiny_models, name):
    """E_2, E_3 of a 6-atom cluster: the analysis library's to 1e-8 eV (float64),
    forces its -Σ dV/dr and minus the variant's gradient; ``energy`` the model's."""
    inner = tiny_models[name]
    path = export(inner, tmp_path / "mbe.pt", "--variants", "2,3")
    atoms = hydrogen_cluster(6, seed=21)
    result = library(inner, atoms, 3, None)
    plan = result.plan
    subset, atom, _ = plan.atom_rows()
    full, full_forces = energy_and_forces(calculator(inner), atoms)
    assert energy_and_forces(calculator(path), atoms)[0] == pytest.approx(full, abs=1e-12)
    for k in (2, 3):
        calc = calculator(path, f"mbe_{k}")
        energy, forces = energy_and_forces(calc, atoms)
        expected = float(truncated_energy(result.terms.v, plan, k))
        assert energy == pytest.approx(expected, abs=1e-8)
        assert abs(energy - full) > 1e-4  # a truncation, not the model's energy
        rows = plan.orders[subset] <= k
        gradient = torch.zeros((len(atoms), 3), dtype=torch.float64)
        gradient.index_add_(0, atom[rows], result.terms.dv[rows])
        np.testing.assert_allclose(forces, -gradient.numpy(), rtol=0, atol=1e-8)
        assert np.abs(forces - full_forces).max() > 1e-5
        entries = [(0, 0), (5, 2)]
        numeric = finite_difference_forces(calc, atoms, entries)
        np.testing.assert_allclose([forces[e] for e in entries], numeric, rtol=0, atol=1e-6)


def test_one_call_gives_every_output_consistently(pet):
    """``energy``, both variants (per atom) and the order sums in one request."""
    _, path = pet
    atoms = hydrogen_cluster(5, seed=22)
    per_atom = ModelOutput(unit="eV", sample_kind="atom")
    request = {"energy": SYSTEM, ENERGY_BY_ORDER: SYSTEM}
    request.update({variant_output(k): per_atom for k in (2, 3)})
    results = calculator(path).run_model(atoms, request)
    by_order = results[ENERGY_BY_ORDER].block().values[0]
    assert by_order.shape == (5,)
    assert results["energy"].block().values.item() == pytest.approx(float(by_order.sum()), abs=1e-9)
    for k in (2, 3):
        block = results[variant_output(k)].block()
        assert block.samples.names == ["system", "atom"] and block.values.shape == (5, 1)
        assert float(block.values.sum()) == pytest.approx(float(by_order[:k].sum()), abs=1e-10)


def test_energy_alone_runs_the_inner_model_only(pet):
    """Asked for ``energy`` only, the model does no MBE work: a cluster within
    the interaction range of its periodic images (which the expansion refuses)
    gets the inner model's energy, and a variant is refused."""
    inner, path = pet
    atoms = hydrogen_cluster(4, seed=23)
    atoms.cell = np.eye(3) * 4.0
    atoms.pbc = True
    assert energy_and_forces(calculator(path), atoms)[0] == pytest.approx(
        energy_and_forces(calculator(inner), atoms)[0], abs=1e-12
    )
    with pytest.raises(Exception, match="may be within the interaction range"):
        energy_and_forces(calculator(path, "mbe_2"), atoms)


def test_screened_variants_equal_the_library_and_record_the_cutoffs(tmp_path, pet):
    inner, _ = pet
    cutoff = "2:3,3:2.6"
    path = export(inner, tmp_path / "screened.pt", "--variants", "2,3", "--cutoff", cutoff)
    model = load_atomistic_model(str(path))
    assert model.metadata().extra["mbe::cutoffs"] == cutoff
    assert f"screened within {cutoff} Å" in model.metadata().name
    assert model.module.cutoffs == [float("inf"), 3.0, 2.6]
    description = model.capabilities().outputs[variant_output(3)].description
    assert f"screened within {cutoff} Å" in description

    atoms = hydrogen_cluster(30, seed=24)
    atoms.positions *= 1.6
    result = library(inner, atoms, 3, cutoff)
    plan = result.plan
    assert 0 < plan.kept(2) < plan.count(2) and 0 < plan.kept(3) < plan.count(3)
    for k in (2, 3):
        energy, _ = energy_and_forces(calculator(path, f"mbe_{k}"), atoms)
        assert energy == pytest.approx(float(truncated_energy(result.terms.v, plan, k)), abs=1e-8)
    by_order = calculator(path).run_model(atoms, {ENERGY_BY_ORDER: SYSTEM})
    assert by_order[ENERGY_BY_ORDER].block().values.shape == (1, 3)  # up to the largest variant


def test_variants_over_molecules(tmp_path):
    """E_2 over the molecules of a water tetramer: the library's over
    ``mbe_fragment``, and the energy of a ``--truncate 2`` export."""
    inner = export_tiny_model("pet", tmp_path, atomic_types=(1, 8))
    both = ["--bodies", "molecules"]
    path = export(inner, tmp_path / "mbe.pt", *both, "--variants", "2")
    truncated = export(inner, tmp_path / "e2.pt", *both, "--truncate", "2")
    description = load_atomistic_model(str(path)).capabilities().outputs["energy/mbe_2"]
    assert "truncated at 2 molecules" in description.description
    atoms = water_cluster(4, seed=25)
    atoms.arrays["mbe_fragment"] = assign_fragments(atoms)
    result = library(inner, atoms, 2, None)
    energy, forces = energy_and_forces(calculator(path, "mbe_2"), atoms)
    expected = float(truncated_energy(result.terms.v, result.plan, 2))
    assert energy == pytest.approx(expected, abs=1e-8)
    reference, reference_forces = energy_and_forces(calculator(truncated), atoms)
    assert energy == pytest.approx(reference, abs=1e-12)
    np.testing.assert_allclose(forces, reference_forces, rtol=0, atol=1e-12)


def test_variants_of_a_pair_potential(tmp_path):
    """A pair potential has no terms beyond two bodies: E_2 and E_3 are its
    energy, E_1 the isolated atoms' (zero forces)."""
    pair = export_pair_potential(tmp_path)
    (tmp_path / "extensions").mkdir()
    path = export(pair, tmp_path / "mbe.pt", "--variants", "1,2,3")
    atoms = hydrogen_cluster(7, seed=26)
    energy, forces = energy_and_forces(calculator(pair), atoms)
    assert abs(energy) > 0.1
    for k in (2, 3):
        variant, variant_forces = energy_and_forces(calculator(path, f"mbe_{k}"), atoms)
        assert variant == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(variant_forces, forces, rtol=0, atol=1e-10)
    one, one_forces = energy_and_forces(calculator(path, "mbe_1"), atoms)
    assert np.abs(one_forces).max() < 1e-12 and abs(one - energy) > 0.1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--variants", "0,2"], "argument --variants: 0 is not a body order (>= 1)"),
        (["--variants", "2,x"], "argument --variants: '2,x' is not a list of body orders"),
        (["--variants", ""], "argument --variants: '' is not a list of body orders"),
        (["--cutoff", "3"], "give --variants K,..., --truncate K or --max-order K"),
    ],
)
def test_bad_variants_are_refused_in_one_line(tmp_path, capsys, options, message):
    model = an_archive(tmp_path / "model.pt")
    assert main(["export", str(model), "-o", str(tmp_path / "out.pt"), *options]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "out.pt").exists()
