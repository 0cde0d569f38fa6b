"""Molecules as bodies: the fragment expansion pinned to physics.

* per-order sums (energies and gradients) agree with QCManyBody (nocp, one
  fragment per molecule) on random and on real energies, complete and truncated;
* ase's TIP3P water, a sum over molecule pairs, has V(S) = 0 and dV(S)/dr = 0
  for every sub-cluster of three or more molecules, while the atom-body
  expansion of a water model does not stop at order 3;
* both conventions sum to the energy of the parent.
"""

import itertools
import math

import ase
import numpy as np
import pytest
import torch
from ase import units
from ase.calculators.tip3p import TIP3P, angleHOH, epsilon0, qH, rOH, sigma0

from metatrain_mbe.expansion import (
    BodyOrderTerms,
    SubsetPlan,
    moebius_transform,
    order_sums,
    truncated_energy,
)

#: Coulomb constant in eV Å / e^2
COULOMB = units.Hartree * units.Bohr
#: force constants of the flexible intramolecular part of the water model
#: (eV/Å^2 for O-H bonds, eV/rad^2 for the H-O-H angle)
K_BOND, K_ANGLE = 22.0, 1.6
THETA0 = math.radians(angleHOH)


# -- structures and models ---------------------------------------------------------


def _rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def water_cluster(n_molecules, seed, *, flexible=False):
    """A compact (H2O)_n cluster, atoms O, H, H per molecule, molecules 2.6-3.4 Å
    apart (O-O) and no two atoms of different molecules closer than 1.6 Å; with
    ``flexible`` the bond lengths and angles are off their TIP3P values."""
    rng = np.random.default_rng(seed)
    molecules = []
    while len(molecules) < n_molecules:
        lengths = rOH + (rng.uniform(-0.05, 0.05, 2) if flexible else np.zeros(2))
        half = (THETA0 + (math.radians(rng.uniform(-8, 8)) if flexible else 0.0)) / 2
        local = np.array(
            [
                [0.0, 0.0, 0.0],
                [lengths[0] * math.sin(half), 0.0, lengths[0] * math.cos(half)],
                [-lengths[1] * math.sin(half), 0.0, lengths[1] * math.cos(half)],
            ]
        )
        centre = np.zeros(3)
        if molecules:
            direction = rng.normal(size=3)
            anchor = molecules[rng.integers(len(molecules))][0]
            centre = anchor + direction / np.linalg.norm(direction) * rng.uniform(2.6, 3.4)
        molecule = centre + local @ _rotation(rng).T
        others = np.concatenate(molecules) if molecules else np.empty((0, 3))
        far = all(np.linalg.norm(m[0] - molecule[0]) > 2.6 for m in molecules)
        if far and (np.linalg.norm(others[:, None] - molecule[None], axis=-1) > 1.6).all():
            molecules.append(molecule)
    return ase.Atoms("OH2" * n_molecules, positions=np.concatenate(molecules))


def tip3p(atoms, rc=100.0, width=1.0):
    """ase's TIP3P energy (eV) and forces (eV/Å) of whole water molecules."""
    atoms = atoms.copy()
    atoms.calc = TIP3P(rc=rc, width=width)
    return atoms.get_potential_energy(), atoms.get_forces()


def flexible_water(atoms, molecule, *, atm=0.0):
    """A flexible water model defined on any subset of atoms (eV, eV/Å).

    Between molecules it is TIP3P without cutoff written atom pair by atom pair
    (point charges, Lennard-Jones between oxygens): on whole molecules it equals
    ase's TIP3P (checked below). Within a molecule, harmonic O-H bonds and a
    harmonic H-O-H angle, a three-atom term counted only when the whole molecule
    is there. ``atm`` adds an Axilrod-Teller triple-dipole term between the
    oxygens of three different molecules (eV Å^9), a genuine three-molecule term.
    """
    r = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    z = torch.tensor(atoms.numbers)
    mol = torch.as_tensor(np.asarray(molecule))
    q = torch.tensor(np.where(atoms.numbers == 8, -2 * qH, qH), dtype=torch.float64)
    energy = 0.0 * r.sum()
    if len(atoms) > 1:
        i, j = torch.triu_indices(len(atoms), len(atoms), 1)
        d = (r[i] - r[j]).norm(dim=-1)
        inter = mol[i] != mol[j]
        oxygens = inter & (z[i] == 8) & (z[j] == 8)
        c6 = (sigma0 / d) ** 6
        energy = energy + (COULOMB * q[i] * q[j] / d)[inter].sum()
        energy = energy + (4 * epsilon0 * (c6**2 - c6))[oxygens].sum()
        bonds = ~inter & (z[i] != z[j])
        energy = energy + (K_BOND * (d - rOH) ** 2)[bonds].sum()
    for m in mol.unique().tolist():
        members = torch.nonzero(mol == m).flatten()
        if len(members) == 3:
            o = members[z[members] == 8]
            h = members[z[members] == 1]
            a, b = r[h[0]] - r[o[0]], r[h[1]] - r[o[0]]
            angle = torch.arccos(torch.dot(a, b) / (a.norm() * b.norm()))
            energy = energy + K_ANGLE * (angle - THETA0) ** 2
    if atm:
        oxygens = torch.nonzero(z == 8).flatten().tolist()
        for a, b, c in itertools.combinations(oxygens, 3):
            ab, bc, ca = r[b] - r[a], r[c] - r[b], r[a] - r[c]
            dab, dbc, dca = ab.norm(), bc.norm(), ca.norm()
            cosines = (-ab @ ca) * (-ab @ bc) * (-bc @ ca) / (dab * dbc * dca) ** 2
            energy = energy + atm * (1 + 3 * cosines) / (dab * dbc * dca) ** 3
    energy.backward()
    return energy.item(), -r.grad.numpy()


def label_plan(parent, plan, calculate):
    """E(S) (eV) and dE(S)/dr (eV/Å, in the plan's atom rows) of every
    sub-cluster of ``plan``, each evaluated as a structure of its own."""
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    _, _, start = plan.atom_rows()
    gradients = torch.zeros((int(start[-1]), 3), dtype=torch.float64)
    for row in range(1, plan.n_subsets):
        atoms = plan.atoms_in(row)
        energy, forces = calculate(parent[atoms], atoms)
        energies[row] = energy
        gradients[start[row] : start[row + 1]] = -torch.as_tensor(forces)
    return energies, gradients


def row_orders(plan):
    """The order of the sub-cluster of each atom row."""
    return plan.orders[plan.atom_rows()[0]]


def molecules_of(atoms):
    return np.repeat(np.arange(len(atoms) // 3), 3)


# -- the plan over fragments ---------------------------------------------------------


def test_fragment_plan_counts_molecules_and_lists_their_atoms():
    fragments = np.array([1, 0, 0, 2, 1, 2, 2, 0])  # interleaved, sizes 3, 2, 3
    plan = SubsetPlan.of_fragments(fragments)
    assert (plan.n_bodies, plan.n_atoms) == (3, 8)
    assert sorted(plan.masks().tolist()) == list(range(8))  # complete: every subset
    assert plan.orders.tolist() == [0, 1, 1, 1, 2, 2, 2, 3]
    membership = plan.atom_membership()
    assert membership.shape == (8, 8) and membership.dtype == torch.bool
    for row in range(plan.n_subsets):
        expected = np.flatnonzero(np.isin(fragments, plan.bodies(row))).tolist()
        assert plan.atoms_in(row) == expected
        assert torch.nonzero(membership[row]).flatten().tolist() == expected
    truncated = SubsetPlan.of_fragments(fragments, max_order=2)
    assert [truncated.bodies(k) for k in range(truncated.n_subsets)] == [
        [],
        [0],
        [1],
        [2],
        [0, 1],
        [0, 2],
        [1, 2],
    ]
    assert truncated.orders.tolist() == [0, 1, 1, 1, 2, 2, 2]


def test_atom_plan_is_the_plan_of_one_atom_per_fragment():
    atoms, singletons = SubsetPlan(5, max_order=3), SubsetPlan.of_fragments(range(5), 3)
    assert atoms.n_bodies == atoms.n_atoms == singletons.n_bodies == 5
    assert torch.equal(atoms.masks(), singletons.masks())
    assert torch.equal(atoms.orders, singletons.orders)
    assert torch.equal(atoms.atom_membership(), singletons.atom_membership())


def test_the_size_limits_count_molecules_not_atoms():
    # 8 waters, 24 atoms: 2^8 sub-clusters, fine with the default limit of 20
    plan = SubsetPlan.of_fragments(np.repeat(np.arange(8), 3))
    assert plan.n_subsets == 256 and plan.n_atoms == 24
    # 30 waters, 90 atoms: more atoms than a 64-bit mask has bits
    plan = SubsetPlan.of_fragments(np.repeat(np.arange(30), 3), max_order=2)
    assert plan.n_subsets == 1 + 30 + math.comb(30, 2)
    assert plan.atom_membership().shape == (plan.n_subsets, 90)
    assert plan.atom_membership().sum(-1).tolist() == (3 * plan.orders).tolist()
    with pytest.raises(ValueError, match="--max-order"):
        SubsetPlan.of_fragments(np.repeat(np.arange(21), 2))


def test_per_body_means_divide_by_molecules_and_rms_by_atoms():
    """Ṽ^(m) divides by C(K, m) · m bodies; |dṼ^(m)/dr| is an RMS over the atoms
    of each sub-cluster (all atoms of its molecules), averaged over C(K, m)."""
    fragments = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    rng = np.random.default_rng(7)
    plan = SubsetPlan.of_fragments(fragments)
    membership = plan.atom_membership()
    energies = torch.tensor(rng.normal(size=plan.n_subsets))
    energies[0] = 0.0
    subset, atom, _ = plan.atom_rows()
    gradients = torch.tensor(rng.normal(size=(len(subset), 3)))
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    dense = torch.zeros((plan.n_subsets, 10, 3), dtype=torch.float64)
    dense[subset, atom] = terms.dv
    sums = terms.order_sums()
    for m in range(1, 5):
        assert terms.v_tilde()[m - 1].item() == pytest.approx(
            sums[m - 1].item() / (math.comb(4, m) * m), abs=1e-12
        )
        rows = plan.orders == m
        atoms = membership[rows].sum(-1)
        rms = (dense[rows].square().sum((-1, -2)) / atoms).sqrt()
        assert terms.dv_tilde()[m - 1].item() == pytest.approx(rms.mean().item(), abs=1e-12)


# -- agreement with QCManyBody -----------------------------------------------------

CASES = [(3, 2), (3, None), (4, 2), (4, 3), (4, None), (5, 2), (5, 3), (5, None)]


def qcmanybody_sums(fragments, positions, max_order, labels):
    """Cumulative energies and gradients through k bodies from QCManyBody (nocp,
    one fragment per molecule). ``labels(bodies, atoms)`` gives E and dE/dr of
    the atoms (parent indices, ascending) of the fragments ``bodies`` (a tuple)."""
    qcmanybody = pytest.importorskip("qcmanybody")
    from qcelemental.models import Molecule
    from qcmanybody.utils import delabeler

    k = int(max(fragments)) + 1
    # QCManyBody wants each fragment's atoms together: reorder the parent
    members = [np.flatnonzero(fragments == f).tolist() for f in range(k)]
    order = [i for atoms in members for i in atoms]
    molecule = Molecule(
        symbols=["He"] * len(order),
        geometry=positions[order] / units.Bohr,
        fragments=[
            list(range(sum(map(len, members[:f])), sum(map(len, members[: f + 1]))))
            for f in range(k)
        ],
    )
    core = qcmanybody.ManyBodyCore(
        molecule,
        bsse_type=["nocp"],
        levels={m: "model" for m in range(1, (max_order or k) + 1)},
        return_total_data=True,
        supersystem_ie_only=False,
        embedding_charges={},
    )
    results = {}
    for _, label, _ in core.iterate_molecules():
        _, real, _ = delabeler(label)
        bodies = tuple(sorted(f - 1 for f in real))
        atoms = sorted(i for f in real for i in members[f - 1])
        energy, gradient = labels(bodies, atoms)
        # QCManyBody lists a sub-system's atoms in its own (fragment) order
        mine = sorted(atoms, key=order.index)
        results[label] = {"energy": energy, "gradient": gradient[[atoms.index(i) for i in mine]]}
    analysis = core.analyze(results)
    through = analysis["energy_body_dict"]
    gradients = analysis["gradient_body_dict"]["nocp"]
    back = np.argsort(order)  # QCManyBody's atom order -> the parent's
    return (
        [through[f"{m}nocp"] for m in range(1, len(through) + 1)],
        [np.asarray(gradients[m])[back] for m in range(1, len(through) + 1)],
    )


def check_against_qcmanybody(fragments, positions, max_order, labels):
    plan = SubsetPlan.of_fragments(fragments, max_order)
    energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
    subset, atom, start = plan.atom_rows()
    gradients = torch.zeros((len(subset), 3), dtype=torch.float64)
    for row in range(1, plan.n_subsets):
        energy, gradient = labels(tuple(plan.bodies(row)), plan.atoms_in(row))
        energies[row] = energy
        gradients[start[row] : start[row + 1]] = torch.as_tensor(gradient)
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    dv = torch.zeros((plan.n_subsets, len(fragments), 3), dtype=torch.float64)
    dv[subset, atom] = terms.dv
    expected, expected_gradients = qcmanybody_sums(fragments, positions, max_order, labels)
    assert len(expected) == plan.max_order
    cumulative = torch.cumsum(terms.order_sums(), 0)
    gradient_sums = torch.cumsum(order_sums(dv, plan)[1:], 0)
    for m in range(1, plan.max_order + 1):
        assert cumulative[m - 1].item() == pytest.approx(expected[m - 1], abs=1e-9)
        assert truncated_energy(terms.v, plan, m).item() == pytest.approx(expected[m - 1], abs=1e-9)
        assert np.abs(gradient_sums[m - 1].numpy() - expected_gradients[m - 1]).max() < 1e-9


@pytest.mark.parametrize("k, max_order", CASES)
def test_random_energies_agree_with_qcmanybody(k, max_order):
    """Molecules of 1 to 4 atoms, interleaved in the parent: only the bookkeeping
    of fragments is tested, by energies and gradients that are random numbers."""
    rng = np.random.default_rng(10 * k + (max_order or 0))
    sizes = rng.integers(1, 5, size=k)
    fragments = rng.permutation(np.repeat(np.arange(k), sizes))
    positions = rng.normal(size=(len(fragments), 3)) * 5
    table = {}

    def labels(bodies, atoms):
        if bodies not in table:
            table[bodies] = (rng.normal() * 3 - len(atoms), rng.normal(size=(len(atoms), 3)))
        return table[bodies]

    check_against_qcmanybody(fragments, positions, max_order, labels)


@pytest.mark.parametrize("k, max_order", CASES)
@pytest.mark.parametrize("model", ["tip3p", "flexible+atm"])
def test_water_energies_agree_with_qcmanybody(k, max_order, model):
    """ase's TIP3P (with its O-O switching function inside the cluster), and
    the flexible water model with a three-molecule Axilrod-Teller term, whose
    three-body terms do not vanish."""
    cluster = water_cluster(k, seed=k, flexible=model != "tip3p")
    fragments = molecules_of(cluster)

    def labels(bodies, atoms):
        if model == "tip3p":
            energy, forces = tip3p(cluster[atoms], rc=6.0, width=2.0)
        else:
            energy, forces = flexible_water(cluster[atoms], fragments[atoms], atm=300.0)
        return energy, -forces

    check_against_qcmanybody(fragments, cluster.positions, max_order, labels)


# -- what a pair-additive model of molecules gives ------------------------------------


def test_flexible_water_is_tip3p_between_rigid_molecules():
    cluster = water_cluster(4, seed=3)
    energy, forces = flexible_water(cluster, molecules_of(cluster))
    expected, expected_forces = tip3p(cluster)
    assert energy == pytest.approx(expected, abs=1e-9)
    assert np.abs(forces - expected_forces).max() < 1e-9


@pytest.mark.parametrize("k", [3, 4, 5])
@pytest.mark.parametrize("rc, width", [(100.0, 1.0), (5.0, 2.0)])
def test_tip3p_has_no_terms_beyond_molecule_pairs(k, rc, width):
    """ase's TIP3P is a sum over pairs of molecules (its switching function
    depends on their O-O distance only): every V(S) and dV(S)/dr of three or
    more molecules vanishes, and the pairs do not."""
    cluster = water_cluster(k, seed=20 + k)
    plan = SubsetPlan.of_fragments(molecules_of(cluster))
    energies, gradients = label_plan(cluster, plan, lambda atoms, _: tip3p(atoms, rc, width))
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    many = plan.orders >= 3
    assert terms.v[many].abs().max() < 1e-9
    assert terms.dv[row_orders(plan) >= 3].abs().max() < 1e-9
    assert terms.v[plan.orders == 2].abs().max() > 1e-2
    assert terms.dv[row_orders(plan) == 2].abs().max() > 1e-2
    assert terms.v.sum().item() == pytest.approx(energies[-1].item(), abs=1e-9)


@pytest.mark.parametrize("k", [3, 4])
def test_molecules_as_bodies_stop_at_pairs_where_atoms_do_not(k):
    """ase's TIP3P accepts whole molecules only, so atoms as bodies are not
    defined for it. The flexible water model extends it to any set of atoms
    (TIP3P between molecules, as checked above, plus harmonic bonds and angle):
    its molecule expansion stops at pairs, its atom expansion does not stop at
    order 3 (the H-O-H angle is a three-atom term). Both sum to the parent's
    energy; truncated at pairs, only the molecule expansion is exact."""
    cluster = water_cluster(k, seed=40 + k, flexible=True)
    molecule = molecules_of(cluster)
    parent_energy, _ = flexible_water(cluster, molecule)

    def model(atoms, indices):
        return flexible_water(atoms, molecule[indices])

    by_molecule = SubsetPlan.of_fragments(molecule)
    energies, gradients = label_plan(cluster, by_molecule, model)
    terms = BodyOrderTerms.from_energies(0, by_molecule, energies, gradients)
    assert terms.v[by_molecule.orders >= 3].abs().max() < 1e-9
    assert terms.dv[row_orders(by_molecule) >= 3].abs().max() < 1e-9
    assert terms.v.sum().item() == pytest.approx(parent_energy, abs=1e-9)
    assert truncated_energy(terms.v, by_molecule, 2).item() == pytest.approx(
        parent_energy, abs=1e-9
    )

    by_atom = SubsetPlan(len(cluster))
    energies, _ = label_plan(cluster, by_atom, model)
    v = moebius_transform(energies, by_atom)
    assert v[by_atom.orders == 3].abs().max() > 1e-3
    assert v.sum().item() == pytest.approx(parent_energy, abs=1e-9)
    assert truncated_energy(v, by_atom, 3).item() == pytest.approx(parent_energy, abs=1e-9)
    assert abs(truncated_energy(v, by_atom, 2).item() - parent_energy) > 1e-3
    # the molecules' own energies are the atom expansion's terms within each one
    within = [
        row for row in range(1, by_atom.n_subsets) if len(set(molecule[by_atom.bodies(row)])) == 1
    ]
    assert v[within].sum().item() == pytest.approx(terms.order_sums()[0].item(), abs=1e-9)
