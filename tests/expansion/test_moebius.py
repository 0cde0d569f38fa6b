import itertools
import math

import numpy as np
import pytest
import torch

from metatrain_mbe.expansion import (
    BodyOrderTerms,
    SubsetPlan,
    atoms_of,
    moebius_transform,
    order_means,
    order_sums,
    truncated_energy,
)


def naive_v(energy, n):
    """V(S) by the recursion of paper Eq. 2 (O(3^N)), as a dict mask -> V."""
    v = {0: 0.0}
    for mask in sorted(range(1, 1 << n), key=lambda m: bin(m).count("1")):
        sub = (mask - 1) & mask
        total = 0.0
        while sub:
            total += v[sub]
            sub = (sub - 1) & mask
        v[mask] = energy[mask] - total
    return v


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matches_recursion_of_eq2(n):
    rng = np.random.default_rng(n)
    energy = torch.tensor(rng.normal(size=1 << n))
    energy[0] = 0.0
    v = moebius_transform(energy, SubsetPlan(n))
    expected = naive_v(energy.tolist(), n)
    assert torch.allclose(
        v, torch.tensor([expected[m] for m in range(1 << n)], dtype=torch.float64), atol=1e-12
    )


def test_sum_of_all_terms_is_total_energy():
    rng = np.random.default_rng(1)
    n = 9
    plan = SubsetPlan(n)
    energy = torch.tensor(rng.normal(size=1 << n)) * 10
    energy[0] = 0.0
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
    rng = np.random.default_rng(max_order)
    full = SubsetPlan(n)
    energy = torch.tensor(rng.normal(size=1 << n))
    energy[0] = 0.0
    v_full = moebius_transform(energy, full)
    plan = SubsetPlan(n, max_order=max_order)
    assert plan.n_subsets == sum(math.comb(n, m) for m in range(max_order + 1))
    v = moebius_transform(energy[plan.masks], plan)
    assert torch.allclose(v, v_full[plan.masks], atol=1e-12)
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

    energies = torch.stack([energy_of(positions, atoms_of(m)) for m in range(1 << n)])
    gradients = torch.stack(
        [
            torch.autograd.grad(e, positions, retain_graph=True, allow_unused=True)[0]
            if e.requires_grad
            else torch.zeros(n, 3, dtype=torch.float64)
            for e in energies
        ]
    )
    terms = BodyOrderTerms.from_energies(0, plan, energies.detach(), gradients)
    v = moebius_transform(energies, plan)  # differentiable
    for mask in [3, 7, 22, 31]:
        (expected,) = torch.autograd.grad(v[mask], positions, retain_graph=True)
        assert torch.allclose(terms.dv[mask], expected, atol=1e-12)
        outside = [i for i in range(n) if i not in atoms_of(mask)]
        assert torch.all(terms.dv[mask, outside] == 0)
    assert abs(terms.v[-1].item()) > 1e-5  # the test energy has a 5-body term


def test_batched_trailing_dimensions():
    n = 4
    plan = SubsetPlan(n)
    energy = torch.randn(1 << n, 3, dtype=torch.float64)
    energy[0] = 0
    batched = moebius_transform(energy, plan)
    for k in range(3):
        assert torch.allclose(batched[:, k], moebius_transform(energy[:, k].contiguous(), plan))


def test_plan_refuses_complete_expansion_of_large_clusters():
    with pytest.raises(ValueError, match="set max_order"):
        SubsetPlan(21)
    plan = SubsetPlan(30, max_order=2)
    assert plan.n_subsets == 1 + 30 + math.comb(30, 2)


def test_wrong_length_is_an_error():
    with pytest.raises(ValueError, match="expected 8"):
        moebius_transform(torch.zeros(7), SubsetPlan(3))


def test_membership_and_masks_are_consistent():
    plan = SubsetPlan(5, max_order=3)
    member = plan.atom_membership()
    for row, mask in enumerate(plan.masks.tolist()):
        assert member[row].nonzero().flatten().tolist() == atoms_of(mask)
    assert set(plan.masks.tolist()) == {
        sum(1 << i for i in c) for m in range(4) for c in itertools.combinations(range(5), m)
    }
