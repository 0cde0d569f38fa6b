"""The batched evaluator against metatomic's ase calculator, one sub-cluster at a time."""

import ase
import numpy as np
import pytest
import torch
from ase.calculators.lj import LennardJones

from metatrain_mbe.compute.ase_evaluator import CalculatorEvaluator
from metatrain_mbe.compute.evaluator import (
    BATCH_LAYOUTS,
    CPU_SUBCLUSTER_BATCH_SIZE,
    DEFAULT_SUBCLUSTER_BATCH_SIZE,
    ModelEvaluator,
)
from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan, truncated_energy

from ..conftest import hydrogen_cluster
from ..models import architecture_params


def parents():
    """A 5-atom cluster with one atom 20 Å away (sub-clusters without any
    neighbour inside the cutoff), and a 3-atom cluster (mixed sizes)."""
    far = hydrogen_cluster(4, seed=3)
    far += ase.Atoms("H", positions=[[20.0, 0.0, 0.0]])
    return [far, hydrogen_cluster(3, seed=5)]


@pytest.fixture(scope="module")
def one_by_one(calculators):
    """E(S) and dE(S)/dr of every sub-cluster through the ase calculator."""
    return {
        name: CalculatorEvaluator(calc).evaluate(parents(), [SubsetPlan(len(p)) for p in parents()])
        for name, calc in calculators.items()
    }


@pytest.mark.parametrize("strategy", BATCH_LAYOUTS)
@pytest.mark.parametrize("name", architecture_params())
def test_batched_matches_ase_calculator(tiny_models, one_by_one, name, strategy):
    # batch_size 6 < 31 + 7 sub-clusters: several calls, one spanning both parents
    evaluator = ModelEvaluator(tiny_models[name], batch_size=6, strategy=strategy)
    plans = [SubsetPlan(len(p)) for p in parents()]
    batched = evaluator.evaluate(parents(), plans)
    for plan, (energies, gradients), (ref_e, ref_g) in zip(plans, batched, one_by_one[name]):
        assert energies.dtype == torch.float64
        assert energies.shape == (plan.n_subsets,)
        assert gradients.shape == (len(plan.atom_rows()[0]), 3)
        torch.testing.assert_close(energies, ref_e, atol=1e-8, rtol=0)
        torch.testing.assert_close(gradients, ref_g, atol=1e-8, rtol=0)
        # the Möbius-inverted terms agree too
        v = BodyOrderTerms.from_energies(0, plan, energies, gradients)
        w = BodyOrderTerms.from_energies(0, plan, ref_e, ref_g)
        torch.testing.assert_close(v.v, w.v, atol=1e-8, rtol=0)
        torch.testing.assert_close(v.dv, w.dv, atol=1e-8, rtol=0)
        # the model is not a pair potential: higher orders do not vanish
        assert v.v[plan.orders == 3].abs().max() > 1e-8


@pytest.mark.parametrize("name", architecture_params())
def test_full_order_reproduces_the_model(tiny_models, calculators, name):
    parent = hydrogen_cluster(6, seed=11)
    plan = SubsetPlan(6)
    ((energies, gradients),) = ModelEvaluator(tiny_models[name]).evaluate([parent], [plan])
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    atoms = parent.copy()
    atoms.calc = calculators[name]
    assert float(truncated_energy(terms.v, plan, 6)) == pytest.approx(
        atoms.get_potential_energy(), abs=1e-8
    )
    atom = plan.atom_rows()[1]
    per_atom = torch.zeros((6, 3), dtype=terms.dv.dtype).index_add_(0, atom, terms.dv)
    np.testing.assert_allclose(-per_atom.numpy(), atoms.get_forces(), atol=1e-8)
    # a far-away atom: the model's own E_1, the same for every atom
    single = ase.Atoms("H", positions=[[0.0, 0.0, 0.0]])
    single.calc = calculators[name]
    assert energies[plan.orders == 1] == pytest.approx(single.get_potential_energy(), abs=1e-8)


def test_single_atom_parent_and_auto_strategy(tiny_models):
    # 11 sub-clusters in calls of 3: the probe's three calls, then the chosen layout
    evaluator = ModelEvaluator(tiny_models["pet"], batch_size=3, strategy="auto")
    plans = [SubsetPlan(1), SubsetPlan(4, max_order=2)]
    results = evaluator.evaluate([ase.Atoms("H"), hydrogen_cluster(4)], plans)
    assert evaluator.strategy in BATCH_LAYOUTS
    assert set(evaluator.timings) == set(BATCH_LAYOUTS)
    (e_single, g_single), (e_trunc, _) = results
    assert e_single[1] == pytest.approx(float(e_trunc[1]), abs=1e-10)
    assert g_single.abs().max() < 1e-10
    # truncated plan rows equal the same rows of a complete plan
    ((e_full, _),) = evaluator.evaluate([hydrogen_cluster(4)], [SubsetPlan(4)])
    rows = [SubsetPlan(4).find(plans[1].bodies(k)) for k in range(plans[1].n_subsets)]
    torch.testing.assert_close(e_trunc, e_full[rows], atol=1e-10, rtol=0)


def test_probe_runs_on_the_job_once(tiny_models):
    parent, plan = hydrogen_cluster(5, seed=4), SubsetPlan(5)  # 31 sub-clusters
    probed = ModelEvaluator(tiny_models["pet"], batch_size=8, strategy="auto")
    # calls of 8 (warm-up), 8 ('fragments' timed), 8 ('systems' timed), 7 (the faster)
    ((energies, gradients),) = probed.evaluate([parent], [plan])
    assert list(probed.timings) == list(BATCH_LAYOUTS)
    assert all(t > 0 for t in probed.timings.values())
    chosen, timings = probed.strategy, dict(probed.timings)
    # the probe's calls were real work: the same numbers as one fixed layout
    fixed = ModelEvaluator(tiny_models["pet"], batch_size=8, strategy="systems")
    ((e_fixed, g_fixed),) = fixed.evaluate([parent], [plan])
    torch.testing.assert_close(energies, e_fixed, atol=1e-10, rtol=0)
    torch.testing.assert_close(gradients, g_fixed, atol=1e-10, rtol=0)
    # remembered: a second run times nothing and keeps the choice
    probed.evaluate([parent], [plan])
    assert probed.strategy == chosen and probed.timings == timings
    assert fixed.timings == {}


def test_short_calls_are_not_timed(tiny_models):
    # 15 sub-clusters in calls of 8 and 7: the warm-up, then a call too short to time
    evaluator = ModelEvaluator(tiny_models["pet"], batch_size=8, strategy="auto")
    evaluator.evaluate([hydrogen_cluster(4)], [SubsetPlan(4)])
    assert evaluator.timings == {} and evaluator.strategy == BATCH_LAYOUTS[0]


def test_cpu_batch_size_and_graph_optimisation(tiny_models):
    default = ModelEvaluator(tiny_models["pet"], device="cpu")
    assert default.batch_size == CPU_SUBCLUSTER_BATCH_SIZE < DEFAULT_SUBCLUSTER_BATCH_SIZE
    assert not default.optimize_graph
    assert ModelEvaluator(tiny_models["pet"], device="cpu", batch_size=10).batch_size == 10


def test_calculator_evaluator_on_a_pair_potential():
    parent = hydrogen_cluster(5, seed=2)
    plan = SubsetPlan(5)
    calc = LennardJones(sigma=0.7, epsilon=0.1, rc=100.0, smooth=False)
    ((energies, gradients),) = CalculatorEvaluator(calc).evaluate([parent], [plan])
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    assert terms.v[plan.orders >= 3].abs().max() < 1e-10
    subset = plan.atom_rows()[0]
    assert terms.dv[plan.orders[subset] >= 3].abs().max() < 1e-9
    assert terms.v[plan.orders == 2].abs().min() > 0
