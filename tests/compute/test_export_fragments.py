"""Exported models with molecules as bodies (``mtt-mbe export --bodies molecules``):
water clusters through metatomic's ase calculator, against every union of
molecules evaluated alone by the inner model."""

import warnings

import ase
import numpy as np
import pytest
import torch
from ase.build import molecule
from metatomic.torch import ModelOutput, check_atomistic_model, load_atomistic_model
from metatomic_ase import MetatomicCalculator

from metatrain_mbe.compute.bonding import bond_cutoff_table, bonded_fragments
from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER
from metatrain_mbe.data.fragments import assign_fragments
from metatrain_mbe.interface.cli import main

from ..models import export_tiny_model

BY_ORDER = {ENERGY_BY_ORDER: ModelOutput(unit="eV", sample_kind="system")}

#: metatomic's ase calculator symmetrises the (NaN) stress of a cluster
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def water_cluster(n_molecules, seed=0, spacing=2.9):
    """``n_molecules`` randomly rotated waters (O, H, H each), their O atoms on a
    zig-zag ``spacing`` Å apart, hydrogen bonds 1.9 to 2.3 Å: molecule k is
    atoms 3k .. 3k+2."""
    rng = np.random.default_rng(seed)
    cluster = ase.Atoms()
    for k in range(n_molecules):
        water = molecule("H2O")
        water.rotate(rng.normal(size=3), rng.normal(size=3), center=water.positions[0])
        water.translate(
            [spacing * k * 0.8, spacing * 0.6 * (k % 2), 0.3 * rng.normal()] - water.positions[0]
        )
        cluster += water
    return cluster


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny PET for H and O and its exports: ``{name: path}``."""
    directory = tmp_path_factory.mktemp("water-models")
    inner = export_tiny_model("pet", directory, atomic_types=(1, 8))
    paths = {"inner": inner}
    for name, options in {
        "molecules": ["--bodies", "molecules"],
        "atoms": [],
        "e2": ["--bodies", "molecules", "--truncate", "2"],
        "e4": ["--bodies", "molecules", "--truncate", "4"],
        "chunked-e2": ["--bodies", "molecules", "--truncate", "2", "--subcluster-batch-size", "4"],
    }.items():
        path = directory / f"{name}.pt"
        command = ["export", str(inner), "-o", str(path), "-e", str(directory / "extensions")]
        assert main(command + options) == 0
        check_atomistic_model(str(path))
        paths[name] = path
    return paths


def calculator(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MetatomicCalculator(
            str(path), extensions_directory=str(path.parent / "extensions"), check_consistency=True
        )


def by_order(path, atoms):
    return calculator(path).run_model(atoms, BY_ORDER)[ENERGY_BY_ORDER].block()


def energy(calc, atoms):
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy()


def independent_order_sums(atoms, fragments, calc):
    """Σ_{|S|=m} V(S) over molecules: every union of molecules evaluated alone,
    then V(S) = Σ_{T ⊆ S} (-1)^(|S|-|T|) E(T) by brute force."""
    n = int(fragments.max()) + 1
    energies = {0: 0.0}
    for mask in range(1, 1 << n):
        chosen = [k for k in range(n) if mask >> k & 1]
        energies[mask] = energy(calc, atoms[np.isin(fragments, chosen)])
    sums = np.zeros(n)
    for mask in range(1, 1 << n):
        size = bin(mask).count("1")
        term = 0.0
        sub = mask
        while True:  # every submask of mask, the empty one last
            term += (-1) ** (size - bin(sub).count("1")) * energies[sub]
            if sub == 0:
                break
            sub = (sub - 1) & mask
        sums[size - 1] += term
    return sums


def test_bonding_in_the_model_matches_the_fragments_command():
    """The TorchScript rule finds the molecules `mtt-mbe fragments` assigns,
    ions (alone) included."""
    scripted = torch.jit.script(bonded_fragments)
    table = bond_cutoff_table([1, 8, 11])
    assert table[11] == -np.inf
    for seed in range(4):
        atoms = water_cluster(4, seed=seed)
        if seed == 3:  # a sodium ion 2.4 Å from an O: bonded to nothing
            atoms += ase.Atoms("Na", positions=[atoms.positions[0] + [0.0, 0.0, 2.4]])
        expected = assign_fragments(atoms)
        found = scripted(torch.tensor(atoms.numbers), torch.tensor(atoms.positions), table).numpy()
        np.testing.assert_array_equal(found, expected)
    assert sorted(set(found.tolist())) == list(range(5))


def test_water_cluster_orders_are_the_moebius_inversion_over_molecules(models):
    atoms = water_cluster(4, seed=1)
    fragments = assign_fragments(atoms)
    assert fragments.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    block = by_order(models["molecules"], atoms)
    assert block.properties.names == ["body_order"]
    assert block.properties.values.reshape(-1).tolist() == [1, 2, 3, 4]
    values = block.values[0].numpy()

    inner = calculator(models["inner"])
    expected = independent_order_sums(atoms, fragments, inner)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-9)
    assert values.sum() == pytest.approx(energy(inner, atoms), abs=1e-9)
    # one body: each water alone, in the parent's geometry
    waters = [energy(inner, atoms[3 * k : 3 * k + 3]) for k in range(4)]
    assert values[0] == pytest.approx(sum(waters), abs=1e-10)
    # the model's energy stays the inner model's (no --truncate)
    assert energy(calculator(models["molecules"]), atoms) == pytest.approx(
        energy(inner, atoms), abs=1e-12
    )


def test_truncated_energy_over_molecules_and_its_forces(models):
    atoms = water_cluster(3, seed=2)
    values = by_order(models["molecules"], atoms).values[0].numpy()
    truncated = calculator(models["e2"])
    assert energy(truncated, atoms) == pytest.approx(values[:2].sum(), abs=1e-10)
    assert abs(values[2]) > 1e-6  # E_2 differs from E

    atoms.calc = truncated
    forces = atoms.get_forces()
    delta = 1e-5
    for atom, axis in [(0, 0), (4, 1), (8, 2)]:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * delta
            shifted.append(energy(truncated, moved))
        assert forces[atom, axis] == pytest.approx(
            -(shifted[0] - shifted[1]) / (2 * delta), abs=1e-6
        )


def test_calls_of_a_few_subclusters_give_the_same_results(models):
    """``--subcluster-batch-size 4``: the unions in calls of 4, for two systems at once."""
    systems = [water_cluster(3, seed=5), water_cluster(4, seed=6)]
    whole = calculator(models["molecules"]).run_model(systems, BY_ORDER)
    chunked = calculator(models["chunked-e2"]).run_model(systems, BY_ORDER)
    expected = torch.zeros((2, 4), dtype=torch.float64)
    for k, atoms in enumerate(systems):
        alone = by_order(models["molecules"], atoms).values[0]
        expected[k, : len(alone)] = alone
    for result in (whole, chunked):
        values = result[ENERGY_BY_ORDER].block().values
        assert torch.allclose(values, expected, rtol=0, atol=1e-10)
    atoms, reference = systems[1].copy(), systems[1].copy()
    atoms.calc = calculator(models["chunked-e2"])
    reference.calc = calculator(models["e2"])
    assert atoms.get_potential_energy() == pytest.approx(
        reference.get_potential_energy(), abs=1e-10
    )
    np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), rtol=0, atol=1e-10)


def test_truncation_at_every_molecule_reproduces_the_model(models):
    atoms = water_cluster(4, seed=3)
    full = atoms.copy()
    full.calc = calculator(models["inner"])
    atoms.calc = calculator(models["e4"])
    assert atoms.get_potential_energy() == pytest.approx(full.get_potential_energy(), abs=1e-9)
    np.testing.assert_allclose(atoms.get_forces(), full.get_forces(), rtol=0, atol=1e-9)


def test_separate_atoms_as_molecules_give_the_atom_expansion(models):
    """No two atoms bonded: every atom is a molecule of its own."""
    rng = np.random.default_rng(4)
    positions = []
    while len(positions) < 5:
        trial = rng.uniform(0.0, 3.5, size=3)
        if all(np.linalg.norm(trial - p) > 1.6 for p in positions):
            positions.append(trial)
    atoms = ase.Atoms("HOHHO", positions=positions)
    assert assign_fragments(atoms).tolist() == list(range(5))
    molecules = by_order(models["molecules"], atoms).values[0]
    atomic = by_order(models["atoms"], atoms).values[0]
    assert torch.allclose(molecules, atomic, rtol=0, atol=1e-12)


def test_metadata_and_outputs_record_the_bodies(models):
    extensions = str(models["inner"].parent / "extensions")
    molecules = load_atomistic_model(str(models["molecules"]), extensions_directory=extensions)
    atoms = load_atomistic_model(str(models["atoms"]), extensions_directory=extensions)
    assert molecules.metadata().extra["mbe::bodies"] == "molecules"
    assert molecules.metadata().extra["mbe::mult"] == "1.3"
    assert atoms.metadata().extra["mbe::bodies"] == "atoms"
    assert "over molecules" in str(molecules.metadata())
    assert "orders count molecules" in str(molecules.metadata())
    description = molecules.capabilities().outputs[ENERGY_BY_ORDER].description
    assert "counted in molecules" in description


@pytest.mark.parametrize(
    "options, message",
    [
        (["--bodies", "residues"], "invalid choice: 'residues'"),
        (["--mult", "0"], "argument --mult: 0 is not a finite number > 0"),
        (["--mult", "x"], "argument --mult: 'x' is not a number"),
    ],
)
def test_bad_bodies_flags_are_refused(tmp_path, capsys, models, options, message):
    command = ["export", str(models["inner"]), "-o", str(tmp_path / "out.pt"), *options]
    assert main(command) == 2
    assert message in capsys.readouterr().err
