import json
import subprocess
import sys
import zipfile

import ase.io
import numpy as np
import pytest
import torch
from ase import units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from metatomic.torch import ModelOutput, check_atomistic_model, load_atomistic_model
from metatomic_ase import MetatomicCalculator

from metatrain_mbe.compute.evaluator import load_model
from metatrain_mbe.compute.export import export_mbe_model
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER
from metatrain_mbe.errors import MBEInputError
from metatrain_mbe.expansion import SubsetPlan, moebius_transform, order_sums
from metatrain_mbe.interface.cli import main

from ..conftest import hydrogen_cluster
from ..models import ARCHITECTURES, export_pair_potential, tiny_model

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
    plan = SubsetPlan(len(atoms))
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    for k in range(1, plan.n_subsets):
        sub = atoms[plan.bodies(k)]
        sub.calc = calc
        energies[k] = sub.get_potential_energy()
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
    # SOAP-BPNN's harmonics come from sphericart's "with hessians" operation
    assert atoms.get_potential_energy() == pytest.approx(
        reference.get_potential_energy(), abs=1e-12
    )
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), rtol=0, atol=1e-12)

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


def test_a_cluster_in_a_wide_periodic_cell_is_the_isolated_cluster(tmp_path, tiny_models):
    # engines pass clusters in a periodic box (LAMMPS p p p, i-PI): accepted when no
    # atom sees a periodic image within the interaction range, refused otherwise
    path = export(tiny_models["pet"], tmp_path / "e3.pt", "--truncate", "3")
    wrapped = calculator(path)
    cutoff = load_atomistic_model(str(path)).capabilities().interaction_range
    atoms = hydrogen_cluster(4, seed=6)
    atoms.positions += 1.0 - atoms.positions.min(axis=0)  # whole inside the cell
    isolated = wrapped.run_model(atoms, {**BY_ORDER, "energy": BY_ORDER[ENERGY_BY_ORDER]})
    boxed = atoms.copy()
    boxed.cell = np.eye(3) * (np.ptp(atoms.positions, axis=0).max() + cutoff + 3.0)
    boxed.pbc = True
    periodic = wrapped.run_model(boxed, {**BY_ORDER, "energy": BY_ORDER[ENERGY_BY_ORDER]})
    for name in (ENERGY_BY_ORDER, "energy"):
        assert torch.allclose(periodic[name].block().values, isolated[name].block().values)
    boxed.calc = wrapped
    atoms.calc = calculator(path)
    np.testing.assert_allclose(boxed.get_forces(), atoms.get_forces(), atol=1e-10)

    small = boxed.copy()
    small.cell = np.eye(3) * (np.ptp(atoms.positions, axis=0).max() + 0.5 * cutoff + 1.0)
    with pytest.raises(Exception, match="may be within the interaction range"):
        wrapped.run_model(small, BY_ORDER)
    slab = boxed.copy()
    slab.pbc = [True, True, False]
    with pytest.raises(Exception, match="periodic in some directions only"):
        wrapped.run_model(slab, BY_ORDER)


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


#: run in a fresh process that imports metatomic only, as an engine would load
#: the model: forces against central finite differences of the energy (eV/Å)
FRESH_PROCESS_FORCES = """
import sys
import numpy as np
from cluster_under_test import atoms
from metatomic_ase import MetatomicCalculator

calc = MetatomicCalculator(sys.argv[1], extensions_directory=sys.argv[2])
atoms.calc = calc
forces = atoms.get_forces()
numeric = np.zeros_like(forces)
for atom in range(len(atoms)):
    for axis in range(3):
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * 1e-4
            moved.calc = calc
            energies.append(moved.get_potential_energy())
        numeric[atom, axis] = -(energies[0] - energies[1]) / 2e-4
assert not any("sphericart" in name or "metatrain" in name for name in sys.modules)
print(np.abs(forces - numeric).max(), np.abs(forces).max())
"""


@pytest.mark.slow
def test_soap_bpnn_forces_are_right_in_a_process_without_python_sphericart(tmp_path, tiny_models):
    """sphericart registers the autograd of its harmonics from Python only; the
    export must give right forces where nothing but metatomic is imported."""
    wrapped = export(tiny_models["soap_bpnn"], tmp_path / "mbe.pt")
    ase.io.write(tmp_path / "cluster.xyz", hydrogen_cluster(5, seed=8), format="extxyz")
    (tmp_path / "cluster_under_test.py").write_text(
        f"import ase.io\natoms = ase.io.read({str(tmp_path / 'cluster.xyz')!r})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS_FORCES, str(wrapped), str(tmp_path / "extensions")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path), "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    error, largest = map(float, result.stdout.split())
    assert largest > 1e-3  # forces that are not all zero
    assert error < 1e-5


def recorded(path):
    with zipfile.ZipFile(path) as archive:
        entry = next(n for n in archive.namelist() if n.endswith("/extra/extensions"))
        return [extension["name"] for extension in json.loads(archive.read(entry))]


@pytest.mark.slow
def test_export_records_only_the_extensions_the_model_uses(tmp_path, tiny_models):
    load_model(tiny_models["soap_bpnn"])  # sphericart loaded in this process
    pet = export(tiny_models["pet"], tmp_path / "pet" / "mbe.pt")
    assert recorded(pet) == []
    assert not any((tmp_path / "pet" / "extensions").iterdir())
    soap = export(tiny_models["soap_bpnn"], tmp_path / "soap" / "mbe.pt")
    assert recorded(soap) == ["sphericart_torch"]


def test_metadata_names_the_wrapped_model(tmp_path, tiny_models):
    pair = export_pair_potential(tmp_path)
    (tmp_path / "extensions").mkdir()
    named = load_atomistic_model(str(export(pair, tmp_path / "mbe.pt")))
    assert str(named.metadata()).startswith("This is the Morse pair (with MBE outputs) model")
    unnamed = export(tiny_models["pet"], tmp_path / "pet" / "e3.pt", "--truncate", "3")
    model = load_atomistic_model(str(unnamed))
    assert str(model.metadata()).startswith("This is the 3-body truncated model")


@pytest.mark.slow
def test_a_checkpoint_exports_like_its_exported_model(tmp_path):
    """``.ckpt`` in, as ``mtt export`` takes it: same energies as the ``.pt``."""
    model = tiny_model("pet")
    torch.save(model.get_checkpoint(), tmp_path / "model.ckpt")
    model.eval().export().save(str(tmp_path / "model.pt"))
    (tmp_path / "extensions").mkdir()
    from_checkpoint = calculator(export(tmp_path / "model.ckpt", tmp_path / "a" / "mbe.pt"))
    from_model = calculator(export(tmp_path / "model.pt", tmp_path / "b" / "mbe.pt"))
    atoms = hydrogen_cluster(4, seed=9)
    by_order = [
        c.run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block().values
        for c in (from_checkpoint, from_model)
    ]
    assert torch.equal(*by_order)


def test_a_bad_checkpoint_is_refused_in_one_line(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(MBEInputError) as error:
        export_mbe_model(tmp_path / "model.ckpt", tmp_path / "mbe.pt")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'model.ckpt'}: not a metatrain checkpoint (")
    assert message.endswith("run `mtt export` on it first") and "\n" not in message
    assert not (tmp_path / "mbe.pt").exists()


def test_an_exported_model_cites_the_paper_and_takes_user_metadata(tmp_path, tiny_models):
    from metatrain_mbe.compute.export import REFERENCES
    from metatrain_mbe.interface.cli import main

    (tmp_path / "meta.yaml").write_text(
        'authors: [A. Researcher]\nreferences:\n  model: ["my training, 2026"]\n'
    )
    line = ["export", str(tiny_models["pet"]), "-o", str(tmp_path / "m.pt")]
    assert main([*line, "--metadata", str(tmp_path / "meta.yaml")]) == 0
    metadata = load_atomistic_model(str(tmp_path / "m.pt")).metadata()
    assert all(reference in metadata.references["implementation"] for reference in REFERENCES)
    assert "doi:10.1063/5.0303302" in REFERENCES[0]
    assert metadata.authors == ["A. Researcher"]
    assert metadata.references["model"] == ["my training, 2026"]
    (tmp_path / "bad.yaml").write_text("colour: blue\n")
    assert main([*line[:-1], str(tmp_path / "n.pt"), "--metadata", str(tmp_path / "bad.yaml")]) == 2
    assert not (tmp_path / "n.pt").exists()
