import itertools
import math

import numpy as np
import pytest
import torch

from metatrain_mbe.expansion import (
    BodyOrderTerms,
    SubsetPlan,
    moebius_gradients,
    moebius_transform,
    order_means,
    order_sums,
    truncated_energy,
)


def naive_v(plan, energy):
    """V(S) by the recursion of paper Eq. 2 over the plan's sub-clusters:
    V(S) = E(S) - sum of V(T) over the proper subsets T of S (O(3^|S|))."""
    position = {tuple(plan.bodies(k)): k for k in range(plan.n_subsets)}
    v = {}
    for bodies, k in sorted(position.items(), key=lambda item: len(item[0])):
        proper = [v[t] for r in range(len(bodies)) for t in itertools.combinations(bodies, r) if t]
        v[bodies] = float(energy[k]) - sum(proper)
    return torch.tensor(
        [v[tuple(plan.bodies(k))] if k else 0.0 for k in range(plan.n_subsets)],
        dtype=torch.float64,
    )


def random_energies(plan, seed):
    energy = torch.tensor(np.random.default_rng(seed).normal(size=plan.n_subsets))
    energy[0] = 0.0
    return energy


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_both_paths_match_the_recursion_of_eq2(n):
    plan = SubsetPlan(n)
    energy = random_energies(plan, n)
    expected = naive_v(plan, energy.tolist())
    fast = moebius_transform(energy, plan)  # complete: the bitmask subset transform
    passes = moebius_transform(energy, plan, fast=False)  # the path of any family
    assert torch.allclose(fast, expected, atol=1e-10)
    assert torch.allclose(passes, fast, atol=1e-10)


def test_the_fast_path_needs_a_complete_plan():
    plan = SubsetPlan(5, max_order=2)
    with pytest.raises(ValueError, match="complete plan"):
        moebius_transform(torch.zeros(plan.n_subsets), plan, fast=True)


def test_sum_of_all_terms_is_total_energy():
    n = 9
    plan = SubsetPlan(n)
    energy = random_energies(plan, 1) * 10
    v = moebius_transform(energy, plan)
    assert v.sum().item() == pytest.approx(energy[-1].item(), abs=1e-9)
    assert truncated_energy(v, plan, n).item() == pytest.approx(energy[-1].item(), abs=1e-9)


@pytest.mark.parametrize("epsilon", [0.37, -1.2])
def test_appendix_c_alternating_terms(epsilon):
    """E(S) - m E_1 = m eps for every S gives V^(m) = (-1)^m m eps (paper Eq. C2)."""
    n, e1 = 8, -13.6
    plan = SubsetPlan(n)
    m = plan.orders.to(torch.float64)
    energy = m * e1 + torch.where(m >= 2, m * epsilon, torch.zeros_like(m))
    v = moebius_transform(energy, plan)
    for order in range(2, n + 1):
        expected = (-1) ** order * order * epsilon
        assert torch.allclose(v[plan.orders == order], torch.tensor(expected, dtype=torch.float64))
    # and Eq. 7 divides the per-order sum by C(N, m) * m
    means = order_means(v, plan)
    assert means[3].item() == pytest.approx(-3 * epsilon / 3)


@pytest.mark.parametrize("max_order", [1, 2, 3, 5])
def test_truncated_plan_gives_the_same_terms(max_order):
    n = 7
    full = SubsetPlan(n)
    energy = random_energies(full, max_order)
    v_full = moebius_transform(energy, full)
    plan = SubsetPlan(n, max_order=max_order)
    assert plan.n_subsets == sum(math.comb(n, m) for m in range(max_order + 1))
    rows = torch.tensor([full.find(plan.bodies(k)) for k in range(plan.n_subsets)])
    v = moebius_transform(energy[rows], plan)
    assert torch.allclose(v, v_full[rows], atol=1e-12)
    assert torch.allclose(order_sums(v, plan), order_sums(v_full, full)[: max_order + 1])


def test_gradients_equal_autograd_of_differentiable_terms():
    """Transforming dE(S)/dr equals autograd of V(S) built from E(S)(r) (Eq. 4)."""
    n = 5
    plan = SubsetPlan(n)
    rng = np.random.default_rng(3)
    positions = torch.tensor(rng.normal(size=(n, 3)), requires_grad=True)

    def energy_of(pos, atoms):
        # a genuinely many-body energy: exp of the sum of pair terms
        if len(atoms) < 2:
            return torch.tensor(-1.0, dtype=torch.float64) * len(atoms)
        d = torch.cdist(pos[atoms], pos[atoms])
        pairs = torch.triu(torch.exp(-d), diagonal=1).sum()
        return -len(atoms) + torch.exp(0.3 * pairs) - 1

    energies = torch.stack([energy_of(positions, plan.bodies(k)) for k in range(plan.n_subsets)])
    subset, atom, _ = plan.atom_rows()
    rows = torch.zeros((len(subset), 3), dtype=torch.float64)
    for k in range(1, plan.n_subsets):
        if energies[k].requires_grad:
            (grad,) = torch.autograd.grad(energies[k], positions, retain_graph=True)
            rows[plan.rows_of(torch.tensor([k]))] = grad[plan.atoms_in(k)]
    terms = BodyOrderTerms.from_energies(0, plan, energies.detach(), rows)
    v = moebius_transform(energies, plan)  # differentiable
    for bodies in [[0, 1], [0, 1, 2], [1, 2, 4], [0, 1, 2, 3, 4]]:
        k = plan.find(bodies)
        (expected,) = torch.autograd.grad(v[k], positions, retain_graph=True)
        assert torch.allclose(terms.dv[plan.rows_of(torch.tensor([k]))], expected[bodies])
        outside = [i for i in range(n) if i not in bodies]
        assert torch.all(expected[outside] == 0)
    assert abs(terms.v[-1].item()) > 1e-5  # the test energy has a 5-body term


def test_gradient_rows_equal_the_dense_transform():
    """The row passes give the dense transform of (n_subsets, N, 3) gradients
    restricted to the atoms of each S, and the dense one is zero elsewhere."""
    plan = SubsetPlan.of_fragments([2, 0, 1, 0, 2, 2, 1], max_order=2)
    subset, atom, _ = plan.atom_rows()
    rows = torch.randn(len(subset), 3, dtype=torch.float64)
    dense = torch.zeros((plan.n_subsets, plan.n_atoms, 3), dtype=torch.float64)
    dense[subset, atom] = rows
    expected = moebius_transform(dense, plan)
    assert torch.allclose(moebius_gradients(rows, plan), expected[subset, atom], atol=1e-12)
    outside = torch.ones_like(expected, dtype=torch.bool)
    outside[subset, atom] = False
    assert expected[outside].abs().max() < 1e-12


def test_batched_trailing_dimensions():
    plan = SubsetPlan(4)
    energy = torch.randn(plan.n_subsets, 3, dtype=torch.float64)
    energy[0] = 0
    batched = moebius_transform(energy, plan)
    for k in range(3):
        assert torch.allclose(batched[:, k], moebius_transform(energy[:, k].contiguous(), plan))


def test_plan_refuses_complete_expansion_of_large_clusters():
    with pytest.raises(ValueError, match="--max-order"):
        SubsetPlan(21)
    plan = SubsetPlan(30, max_order=2)
    assert plan.n_subsets == 1 + 30 + math.comb(30, 2)
    with pytest.raises(ValueError, match="--cutoff"):
        SubsetPlan(400, max_order=3)  # 10^7 trimers without screening


def test_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="expected 8"):
        moebius_transform(torch.zeros(7), SubsetPlan(3))
    with pytest.raises(ValueError, match="atom rows"):
        moebius_gradients(torch.zeros(5, 3), SubsetPlan(3))


def test_positions_bodies_and_membership_are_consistent():
    plan = SubsetPlan(5, max_order=3)
    member = plan.atom_membership()
    expected = [c for m in range(4) for c in itertools.combinations(range(5), m)]
    assert [tuple(plan.bodies(k)) for k in range(plan.n_subsets)] == expected
    for k, bodies in enumerate(expected):
        assert member[k].nonzero().flatten().tolist() == list(bodies)
        assert plan.find(list(bodies)) == k
    assert plan.find([0, 1, 2, 3]) is None
    with pytest.raises(KeyError):
        plan.index(torch.tensor([[0, 0]]))
