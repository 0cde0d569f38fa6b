"""Screened, truncated families: what they keep and that V(S) stays exact.

* the family is the set of all S with every two bodies within R_|S| (checked
  against a brute-force list of all C(N, m)), and it is downward closed;
* V(S) over a screened family equals an independent recursion of Eq. 2 on the
  same family;
* a pair potential has V(S) = 0 and dV(S)/dr = 0 for |S| >= 3 at any N and
  cutoff, while its pairs do not vanish.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from metatrain_mbe.expansion import (
    BodyOrderTerms,
    Cutoffs,
    SubsetPlan,
    energy_per_body,
    moebius_transform,
    order_means,
)

from .test_moebius import naive_v, random_energies


def random_cluster(n, density, seed):
    """``n`` points (Å) uniform in a cube holding ``density`` points per Å^3."""
    side = (n / density) ** (1 / 3)
    return torch.tensor(np.random.default_rng(seed).uniform(0, side, size=(n, 3)))


def screened_plan(positions, max_order, cutoffs, **options):
    distances = torch.cdist(positions, positions)
    i, j = torch.triu_indices(len(positions), len(positions), 1)
    near = distances[i, j] <= cutoffs.largest
    return SubsetPlan(
        len(positions),
        max_order,
        cutoffs=cutoffs,
        pairs=torch.stack([i[near], j[near]], 1),
        distances=distances[i, j][near],
        **options,
    )


@pytest.mark.parametrize(
    "n, by_order", [(12, {2: 2.5}), (25, {2: 3.0, 3: 2.4}), (30, {3: 2.6, 4: 2.0})]
)
def test_family_is_every_set_within_the_cutoffs_and_downward_closed(n, by_order):
    positions = random_cluster(n, 0.1, seed=n)
    cutoffs = Cutoffs(by_order)
    plan = screened_plan(positions, 4, cutoffs)
    distances = torch.cdist(positions, positions)
    kept = {tuple(plan.bodies(k)) for k in range(plan.n_subsets)}
    for m in range(1, 5):
        brute = [
            c
            for c in itertools.combinations(range(n), m)
            if all(distances[a, b] <= cutoffs.at(m) for a, b in itertools.combinations(c, 2))
        ]
        assert [tuple(plan.bodies(k)) for k in plan.positions(m).tolist()] == brute
        assert plan.kept(m) == len(brute)
    for bodies in kept:
        assert all(
            sub in kept for r in range(len(bodies)) for sub in itertools.combinations(bodies, r)
        )
    assert 0 < plan.kept(3) < math.comb(n, 3)


def test_screened_terms_equal_an_independent_recursion_on_the_family():
    plan = screened_plan(random_cluster(40, 0.08, seed=1), 4, Cutoffs({2: 3.5, 4: 3.0}))
    energy = random_energies(plan, 2)
    assert torch.allclose(
        moebius_transform(energy, plan), naive_v(plan, energy.tolist()), atol=1e-10
    )


def test_orders_that_screening_thins_have_no_eq7_mean():
    plan = screened_plan(random_cluster(20, 0.1, seed=3), 3, Cutoffs({3: 2.5}))
    v = moebius_transform(random_energies(plan, 4), plan)
    means = order_means(v, plan)
    assert plan.is_full(2) and not plan.is_full(3)
    assert math.isfinite(means[2]) and math.isnan(means[3])
    per_body = energy_per_body(v, plan)
    assert per_body[3].item() == pytest.approx(v[plan.positions(3)].sum().item() / 20)


def pair_energy(positions):
    """A Morse pair potential (eV, Å), a sum over pairs, plus -1 eV per atom."""
    if len(positions) < 2:
        return positions.sum() * 0 - 1.0 * len(positions)
    x = torch.exp(-(torch.pdist(positions) - 2.0))
    return -1.0 * len(positions) + (0.1 * (x**2 - 2 * x)).sum()


@pytest.mark.parametrize(
    "n, max_order, by_order", [(10, None, {}), (60, 3, {2: 4.0}), (200, 4, {2: 3.0})]
)
def test_a_pair_potential_has_no_terms_beyond_pairs(n, max_order, by_order):
    positions = random_cluster(n, 0.06, seed=n).requires_grad_(True)
    plan = screened_plan(positions.detach(), max_order, Cutoffs(by_order), max_atoms=10)
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    _, _, start = plan.atom_rows()
    gradients = torch.zeros((int(start[-1]), 3), dtype=torch.float64)
    for k in range(1, plan.n_subsets):
        atoms = plan.atoms_in(k)
        energy = pair_energy(positions[atoms])
        energies[k] = energy.detach()
        (grad,) = torch.autograd.grad(energy, positions, allow_unused=True)
        if grad is not None:
            gradients[start[k] : start[k + 1]] = grad[atoms]
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    row_orders = plan.orders[plan.atom_rows()[0]]
    assert plan.max_order >= 3
    assert terms.v[plan.orders >= 3].abs().max() < 1e-10
    assert terms.dv[row_orders >= 3].abs().max() < 1e-10
    assert terms.v[plan.orders == 2].abs().max() > 1e-4
    assert terms.dv[row_orders == 2].abs().max() > 1e-4


@pytest.mark.parametrize(
    "by_order, message",
    [
        ({2: -1.0}, "positive"),
        ({2: float("nan")}, "positive"),
        ({2: 3.0, 3: 4.0}, "must not grow"),
        ({1: 3.0}, "orders >= 2"),
    ],
)
def test_bad_cutoffs_are_refused(by_order, message):
    with pytest.raises(ValueError, match=message):
        Cutoffs(by_order)


def test_a_screened_family_needs_the_pair_distances():
    with pytest.raises(ValueError, match="pairs of bodies"):
        SubsetPlan(10, 3, cutoffs=Cutoffs({2: 3.0}))
