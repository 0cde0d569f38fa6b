import ase
import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import collect_sets, enumerate_subclusters, parse_e1, resolve_e1

from ..conftest import E1_AR, lj_label


def test_lennard_jones_has_no_terms_beyond_pairs(lj_dataset):
    e1 = resolve_e1(lj_dataset)
    assert e1 == {"Ar": pytest.approx(E1_AR)}
    sets, unlabelled = collect_sets(lj_dataset, e1)
    assert len(sets) == 3 and unlabelled == []
    for labelled in sets:
        terms = labelled.terms()
        orders = labelled.plan.orders
        subset, atom, _ = labelled.plan.atom_rows()
        assert terms.v[orders >= 3].abs().max() < 1e-10
        assert terms.dv[orders[subset] >= 3].abs().max() < 1e-10
        assert terms.v[orders == 2].abs().min() > 0  # the pair terms are there
        assert torch.allclose(terms.v[orders == 1], torch.tensor(E1_AR, dtype=torch.float64))
        parent_energy = labelled.parent.get_potential_energy()
        assert terms.v.sum().item() == pytest.approx(parent_energy, abs=1e-10)
        # gradients of the parent are minus its forces, and sum over S of dV(S)
        forces = torch.from_numpy(labelled.parent.get_forces())
        per_atom = torch.zeros_like(forces).index_add_(0, atom, terms.dv)
        assert torch.allclose(per_atom, -forces, atol=1e-10)


def test_truncated_sets_need_only_small_subclusters(lj_dataset):
    e1 = resolve_e1(lj_dataset)
    small = [a for a in lj_dataset if len(a) <= 3 or "mbe_atoms" not in a.info]
    sets, _ = collect_sets(small, e1, max_order=3)
    assert all(s.plan.max_order == 3 for s in sets)
    full, _ = collect_sets(lj_dataset, e1)
    for s, f in zip(sets, full):
        rows = [f.plan.find(s.plan.bodies(k)) for k in range(s.plan.n_subsets)]
        assert torch.allclose(s.terms().v, f.terms().v[rows])


def test_parents_without_subclusters_are_set_aside(lj_dataset):
    extra = lj_dataset[1].copy()
    extra.calc = SinglePointCalculator(extra, energy=-1.0)
    extra.info["mbe_parent"] = 99
    sets, unlabelled = collect_sets(lj_dataset + [extra], resolve_e1(lj_dataset))
    assert [a.info["mbe_parent"] for a in unlabelled] == [99]
    assert len(sets) == 3


def test_incomplete_set_names_missing_atom_sets(lj_dataset):
    frames = [a for a in lj_dataset if list(a.info.get("mbe_atoms", [])) not in ([0, 2], [1, 3, 4])]
    with pytest.raises(MBEInputError, match=r"missing atom sets \[0, 2\], \[1, 3, 4\]$"):
        collect_sets(frames, resolve_e1(frames))


def test_missing_e1_is_an_error(lj_dataset):
    frames = [a for a in lj_dataset if len(a) > 1]
    with pytest.raises(MBEInputError, match="no isolated-atom energy E_1 for Ar.*--e1 Ar="):
        collect_sets(frames, resolve_e1(frames))
    sets, _ = collect_sets(frames, resolve_e1(frames, parse_e1([f"Ar={E1_AR}"])))
    assert len(sets) == 3


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.set_pbc(True), "field 'pbc' is periodic"),
        (lambda a: a.calc.results.update(energy=float("nan")), "field 'energy' is nan"),
        (lambda a: a.set_atomic_numbers([1] * len(a)), "field 'numbers'"),
        (lambda a: a.positions.__setitem__((0, 0), a.positions[0, 0] + 0.1), "'positions'"),
        (lambda a: a.info.__setitem__("mbe_parent", 17), "mbe_parent'=17 names no parent"),
        (lambda a: a.calc.results.pop("forces"), "field 'forces' is missing"),
    ],
)
def test_bad_subcluster_is_a_one_line_error(lj_dataset, change, message):
    bad = next(a for a in lj_dataset if len(a.info.get("mbe_atoms", [])) == 3)
    change(bad)
    with pytest.raises(MBEInputError, match=message) as error:
        collect_sets(lj_dataset, resolve_e1(lj_dataset))
    assert "\n" not in str(error.value)


def test_large_clusters_need_max_order():
    parent = ase.Atoms("Ar22", positions=np.arange(66.0).reshape(22, 3), pbc=False)
    parent.info["mbe_parent"] = 0
    parent.calc = SinglePointCalculator(parent, energy=-1.0)
    pair = ase.Atoms("Ar2", positions=parent.positions[:2])
    pair.info.update(mbe_parent=0, mbe_atoms=np.array([0, 1]), mbe_order=2)
    pair.calc = SinglePointCalculator(pair, energy=-2.0)
    with pytest.raises(MBEInputError, match="2\\^22 sub-clusters.*truncate it with --max-order"):
        collect_sets([parent, pair], {"Ar": -1.0})
    with pytest.raises(MBEInputError, match="incomplete sub-cluster set"):
        collect_sets([parent, pair], {"Ar": -1.0}, max_order=2)


@pytest.mark.parametrize(
    "item, message",
    [
        ("Xx=1", "--e1: 'Xx' is not a chemical symbol"),
        ("H=nan", "--e1: H=nan is not a finite energy"),
        ("H=-inf", "--e1: H=-inf is not a finite energy"),
        ("H", "--e1: 'H' is not SYMBOL=ENERGY"),
    ],
)
def test_bad_e1_option(item, message):
    with pytest.raises(MBEInputError, match=message):
        parse_e1([item])


def test_order_one_subclusters_serve_as_isolated_atoms(lj_dataset):
    parents = [a for a in lj_dataset if len(a) == 6 and "mbe_atoms" not in a.info]
    singles = lj_label(enumerate_subclusters(parents, [1]))
    frames = [a for a in lj_dataset if len(a) > 1] + singles
    sets, _ = collect_sets(frames, resolve_e1(frames))
    reference, _ = collect_sets(lj_dataset, resolve_e1(lj_dataset))
    for s, r in zip(sets, reference):
        assert torch.allclose(s.terms().v, r.terms().v)


def test_labels_of_two_levels_of_theory_are_refused_in_one_expansion(lj_dataset):
    theory = "pyscf;basis=cc-pvdz;spin_treatment={};xc=pbe"
    frames = [a.copy() for a in lj_dataset]
    for atoms, original in zip(frames, lj_dataset):
        atoms.calc = original.calc
        atoms.info["mbe_theory"] = theory.format("restricted")
    assert len(collect_sets(frames, resolve_e1(frames))[0]) == 3
    frames[4].info["mbe_theory"] = theory.format("unrestricted")
    with pytest.raises(MBEInputError) as error:
        collect_sets(frames, resolve_e1(frames))
    message = str(error.value)
    assert "mbe_atoms=[0 1]): field 'mbe_theory' spin_treatment=unrestricted differs " in message
    assert "differs from the spin_treatment=restricted of " in message
    assert "\n" not in message
    del frames[4].info["mbe_theory"]  # unknown is a level of its own
    with pytest.raises(MBEInputError, match="field 'mbe_theory' missing differs from the pyscf"):
        collect_sets(frames, resolve_e1(frames))
