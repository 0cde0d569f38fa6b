import ase.io
import numpy as np
import pytest
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from metatomic.torch import ModelOutput, check_atomistic_model, load_atomistic_model
from metatomic_ase import MetatomicCalculator

from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER
from metatrain_mbe.expansion import SubsetPlan, moebius_transform, order_sums
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from ..models import ARCHITECTURES, export_pair_potential

BY_ORDER = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}


def calculator(path):
    return MetatomicCalculator(
        str(path), extensions_directory=str(path.parent / "extensions"), check_consistency=True
    )


def export(model, output, *options):
    assert (
        main(
            [
                "export",
                str(model),
                "-o",
                str(output),
                "-e",
                str(model.parent / "extensions"),
                *options,
            ]
        )
        == 0
    )
    check_atomistic_model(str(output))
    return output


def brute_force_order_sums(atoms, calc):
    """Σ_{|S|=m} V(S) from every sub-cluster evaluated alone, one by one."""
    n = len(atoms)
    energies = torch.zeros(1 << n, dtype=torch.float64)
    for mask in range(1, 1 << n):
        sub = atoms[[i for i in range(n) if mask >> i & 1]]
        sub.calc = calc
        energies[mask] = sub.get_potential_energy()
    plan = SubsetPlan(n)
    return order_sums(moebius_transform(energies, plan), plan)[1:]


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_wrapped_model_keeps_energy_and_adds_exact_mbe(tmp_path, tiny_models, name):
    inner_path = tiny_models[name]
    wrapped_path = export(inner_path, tmp_path / "mbe.pt")
    inner, wrapped = calculator(inner_path), calculator(wrapped_path)
    atoms = hydrogen_cluster(6, seed=1)
    reference = atoms.copy()
    reference.calc = inner
    atoms.calc = wrapped
    assert atoms.get_potential_energy() == reference.get_potential_energy()
    np.testing.assert_array_equal(atoms.get_forces(), reference.get_forces())

    by_order = wrapped.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block()
    assert by_order.properties.names == ["body_order"]
    assert by_order.samples.names == ["system"]
    expected = brute_force_order_sums(atoms, inner)
    assert torch.allclose(by_order.values[0], expected, atol=1e-8, rtol=0)
    assert by_order.values[0].sum().item() == pytest.approx(reference.get_potential_energy())

    extensions = str(inner_path.parent / "extensions")
    loaded = load_atomistic_model(str(wrapped_path), extensions_directory=extensions)
    original = load_atomistic_model(str(inner_path), extensions_directory=extensions)
    outputs = set(loaded.capabilities().outputs)
    assert outputs == set(original.capabilities().outputs) | {ENERGY_BY_ORDER}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pet", "experimental.mace"])
def test_truncation_at_n_reproduces_the_full_model(tmp_path, tiny_models, name):
    inner_path = tiny_models[name]
    truncated = calculator(export(inner_path, tmp_path / "e5.pt", "--truncate", "5"))
    atoms = hydrogen_cluster(5, seed=2)
    reference = atoms.copy()
    reference.calc = calculator(inner_path)
    atoms.calc = truncated
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-8)


def test_two_body_truncation_of_a_pair_potential_is_exact(tmp_path):
    pair = export_pair_potential(tmp_path)
    (tmp_path / "extensions").mkdir()
    truncated = calculator(export(pair, tmp_path / "e2.pt", "--truncate", "2"))
    wrapped = calculator(export(pair, tmp_path / "mbe.pt"))
    atoms = hydrogen_cluster(7, seed=3)
    reference = atoms.copy()
    reference.calc = calculator(pair)
    atoms.calc = truncated
    assert atoms.get_potential_energy() == pytest.approx(
        reference.get_potential_energy(), abs=1e-10
    )
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), atol=1e-10)
    by_order = wrapped.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block().values[0]
    assert by_order[1].abs() > 0.1
    assert by_order[2:].abs().max() < 1e-10


@pytest.mark.slow
def test_truncated_forces_are_minus_the_energy_gradient(tmp_path, tiny_models):
    truncated = calculator(export(tiny_models["pet"], tmp_path / "e2.pt", "--truncate", "2"))
    atoms = hydrogen_cluster(5, seed=4)
    atoms.calc = truncated
    forces = atoms.get_forces()
    delta = 1e-5
    for atom, axis in [(0, 0), (3, 2)]:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * delta
            moved.calc = truncated
            shifted.append(moved.get_potential_energy())
        assert forces[atom, axis] == pytest.approx(
            -(shifted[0] - shifted[1]) / (2 * delta), abs=1e-6
        )


def _nve_drift(atoms, calc, steps=40):
    atoms = atoms.copy()
    atoms.calc = calc
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dynamics = VelocityVerlet(atoms, timestep=0.1 * units.fs)
    totals = []
    for _ in range(steps):
        dynamics.run(1)
        totals.append(atoms.get_total_energy())
    return max(totals) - min(totals)


@pytest.mark.slow
def test_nve_conserves_energy_like_the_inner_model(tmp_path, tiny_models):
    inner_path = tiny_models["pet"]
    atoms = hydrogen_cluster(5, seed=5)
    inner = _nve_drift(atoms, calculator(inner_path))
    wrapped = _nve_drift(atoms, calculator(export(inner_path, tmp_path / "mbe.pt")))
    truncated = _nve_drift(
        atoms, calculator(export(inner_path, tmp_path / "e5.pt", "--truncate", "5"))
    )
    assert wrapped == pytest.approx(inner, rel=1e-6, abs=1e-12)
    assert truncated <= 2 * inner + 1e-6


def test_periodic_systems_are_refused(tmp_path, tiny_models):
    wrapped = calculator(export(tiny_models["pet"], tmp_path / "mbe.pt"))
    atoms = hydrogen_cluster(4, seed=6)
    atoms.cell = np.eye(3) * 10
    atoms.pbc = True
    with pytest.raises(Exception, match="non-periodic"):
        wrapped.run_model(atoms, BY_ORDER)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["soap_bpnn", "experimental.mace"])
def test_mbe_output_equals_the_analysis(tmp_path, tiny_models, name):
    """The exported output and `mtt-mbe analyze --model` give the same sums."""
    import metatensor.torch as mts

    inner_path = tiny_models[name]
    wrapped = calculator(export(inner_path, tmp_path / "mbe.pt"))
    parent = hydrogen_cluster(6, seed=7)
    ase.io.write(tmp_path / "parent.xyz", parent, format="extxyz")
    out = tmp_path / "analysis"
    assert (
        main(
            [
                "analyze",
                str(tmp_path / "parent.xyz"),
                "--model",
                str(inner_path),
                "-e",
                str(inner_path.parent / "extensions"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    energy = mts.load(str(out / "model" / "mbe_energy.mts"))
    analysed = torch.stack([block.values.sum() for block in energy.blocks()])
    parent = ase.io.read(tmp_path / "parent.xyz")  # the positions analysed (1e-8 Å)
    by_order = wrapped.run_model(parent, BY_ORDER)[ENERGY_BY_ORDER].block().values[0]
    assert torch.allclose(by_order, analysed, atol=1e-9, rtol=0)
