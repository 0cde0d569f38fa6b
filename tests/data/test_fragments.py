"""Molecules from bonding: water clusters with hydrogen bonds, mixtures, ions."""

import ase
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.data import fragments_of
from metatrain_mbe.data.fragments import (
    BOND_TOLERANCE,
    DEFAULT_MULT,
    assign_fragments,
    bonded_pairs,
    fragment_structures,
)
from metatrain_mbe.errors import MBEInputError

OH = 0.96  # Å, the O-H bond of water
HOH = np.radians(104.5)


def _unit(vector):
    vector = np.asarray(vector, dtype=float)
    return vector / np.linalg.norm(vector)


def _normal(u):
    """A unit vector perpendicular to ``u``."""
    return _unit(np.cross(u, [0, 0, 1] if abs(u[2]) < 0.9 else [1, 0, 0]))


def donor_water(acceptor, direction, hbond=1.85, oh=OH):
    """A water (O, H, H) donating a linear hydrogen bond to the point
    ``acceptor``: its first H is ``hbond`` Å from it along ``direction``."""
    u = _unit(direction)
    h1 = np.asarray(acceptor, dtype=float) + hbond * u
    o = h1 + oh * u
    h2 = o + OH * (-np.cos(HOH) * u + np.sin(HOH) * _normal(u))
    return ase.Atoms("OHH", positions=[o, h1, h2])


def acceptor_water(donor, direction, distance=1.85):
    """A water (O, H, H) whose O is ``distance`` Å from the point ``donor``
    along ``direction``, its H pointing away from it."""
    u = _unit(direction)
    o = np.asarray(donor, dtype=float) + distance * u
    w = _normal(u)
    half = HOH / 2
    h1 = o + OH * (np.cos(half) * u + np.sin(half) * w)
    h2 = o + OH * (np.cos(half) * u - np.sin(half) * w)
    return ase.Atoms("OHH", positions=[o, h1, h2])


def water_dimer(hbond=1.85):
    """An acceptor water (atoms 0-2), then a water (3-5) whose H 4 donates to O 0."""
    acceptor = acceptor_water([0, 0, 0], [-1, 0, 0], distance=0.0)
    return acceptor + donor_water(acceptor.positions[0], [1, 0.2, 0.1], hbond)


def cyclic_tetramer():
    """(H2O)4: O on a square of side 2.8 Å (O...O), each water donating a
    linear hydrogen bond (H...O 1.84 Å) to the next; waters in turn."""
    corners = 2.8 * np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    waters = ase.Atoms()
    for k in range(4):
        edge = _unit(corners[(k + 1) % 4] - corners[k])
        o = corners[k]
        free = o + OH * (np.cos(HOH) * edge + np.sin(HOH) * np.array([0, 0, 1.0]))
        waters += ase.Atoms("OHH", positions=[o, o + OH * edge, free])
    return waters


def _closest_between(atoms, fragments):
    distances = atoms.get_all_distances()
    other = fragments[:, None] != fragments[None, :]
    return distances[other].min()


def test_the_cyclic_water_tetramer_is_four_molecules():
    waters = cyclic_tetramer()
    expected = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert assign_fragments(waters).tolist() == expected
    assert _closest_between(waters, np.array(expected)) == pytest.approx(2.8 - OH)
    bonded, unclear = bonded_pairs(waters)
    assert bonded.tolist() == [[0, 1], [0, 2], [3, 4], [3, 5], [6, 7], [6, 8], [9, 10], [9, 11]]
    assert unclear.tolist() == []


def test_fragments_are_numbered_by_their_lowest_atom():
    waters = cyclic_tetramer()
    # the oxygens first, then the hydrogens of each water
    order = [0, 3, 6, 9, 1, 2, 4, 5, 7, 8, 10, 11]
    assert assign_fragments(waters[order]).tolist() == [0, 1, 2, 3, 0, 0, 1, 1, 2, 2, 3, 3]
    # the second water's hydrogen first
    order = [4, 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11]
    assert assign_fragments(waters[order]).tolist() == [0, 1, 1, 1, 0, 0, 2, 2, 2, 3, 3, 3]


@pytest.mark.parametrize("hbond", [1.6, 1.7, 1.85, 2.0])
def test_hydrogen_bonds_are_not_bonds(hbond):
    dimer = water_dimer(hbond)
    assert dimer.get_distance(0, 4) == pytest.approx(hbond)
    assert assign_fragments(dimer).tolist() == [0, 0, 0, 1, 1, 1]
    bonded, unclear = bonded_pairs(dimer)
    assert bonded.tolist() == [[0, 1], [0, 2], [3, 4], [3, 5]]
    assert unclear.tolist() == []


@pytest.mark.parametrize("oh", [0.90, 0.96, 1.10])
def test_stretched_o_h_bonds_are_bonds(oh):
    acceptor = acceptor_water([0, 0, 0], [-1, 0, 0], distance=0.0)
    dimer = acceptor + donor_water(acceptor.positions[0], [1, 0, 0], 2.8 - oh, oh=oh)
    assert dimer.get_distance(3, 4) == pytest.approx(oh)
    assert assign_fragments(dimer).tolist() == [0, 0, 0, 1, 1, 1]


def test_an_h_bond_near_the_cutoff_is_ambiguous():
    cutoff = DEFAULT_MULT * (0.31 + 0.66)
    dimer = water_dimer(hbond=cutoff)
    assert bonded_pairs(dimer)[1].tolist() == [[0, 4]]
    with pytest.raises(MBEInputError, match=r"^structure: atoms 0 \(O\) and 4 \(H\) are 1.261 Å "):
        assign_fragments(dimer)
    # just outside the band either side: two waters, or one
    assert assign_fragments(water_dimer((1 + BOND_TOLERANCE) * cutoff + 1e-3)).max() == 1
    assert assign_fragments(water_dimer((1 - BOND_TOLERANCE) * cutoff - 1e-3)).max() == 0


def test_mult_decides():
    dimer = water_dimer(hbond=1.6)
    assert assign_fragments(dimer, mult=2.0).tolist() == [0, 0, 0, 0, 0, 0]
    # ase's natural cutoffs (mult 1): water's O-H (0.96 Å) is within 10 % of 0.97 Å
    with pytest.raises(MBEInputError, match=r"atoms 0 \(O\) and 1 \(H\) are 0.960 Å apart"):
        assign_fragments(dimer, mult=1.0)
    with pytest.raises(MBEInputError, match="mult 0 is not a finite number > 0"):
        assign_fragments(dimer, mult=0)


def test_an_ambiguous_pair_within_a_molecule_is_harmless():
    # H-H 0.80 Å lies in the band of the H-H cutoff (0.81 Å), both H bond to the O
    angle = 2 * np.arcsin(0.4 / OH)
    water = ase.Atoms(
        "OHH", positions=[[0, 0, 0], [OH, 0, 0], [OH * np.cos(angle), OH * np.sin(angle), 0]]
    )
    assert bonded_pairs(water)[1].tolist() == [[1, 2]]
    assert assign_fragments(water).tolist() == [0, 0, 0]


def test_methanol_and_water():
    methanol = molecule("CH3OH")  # C, O, H (methyl), H (hydroxyl), H, H
    assert methanol.get_chemical_symbols() == ["C", "O", "H", "H", "H", "H"]
    c, o, h = methanol.positions[[0, 1, 3]]
    lone_pair = _unit(o - c) + _unit(o - h)
    donor = donor_water(o, lone_pair, hbond=1.85)
    acceptor = acceptor_water(h, h - o, distance=1.9)
    mixture = donor + methanol + acceptor
    expected = [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    assert _closest_between(mixture, np.array(expected)) == pytest.approx(1.85)
    assert assign_fragments(mixture).tolist() == expected


def test_ammonia_and_water():
    ammonia = molecule("NH3")  # N, then H below it: the lone pair points along +z
    n, h = ammonia.positions[[0, 1]]
    donor = donor_water(n, [0, 0, 1], hbond=1.95)
    acceptor = acceptor_water(h, h - n, distance=2.1)
    mixture = donor + ammonia + acceptor
    expected = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert _closest_between(mixture, np.array(expected)) == pytest.approx(1.95)
    assert assign_fragments(mixture).tolist() == expected


def hydrated_sodium():
    """Four waters, their O 2.4 Å from a Na+ (the last atom), H pointing away."""
    waters = ase.Atoms()
    for direction in ([1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]):
        waters += acceptor_water([0, 0, 0], direction, distance=2.4)
    return waters + ase.Atoms("Na", positions=[[0, 0, 0]])


def test_a_sodium_ion_is_its_own_fragment():
    cluster = hydrated_sodium()
    assert cluster.get_distance(0, 12) == pytest.approx(2.4)
    assert assign_fragments(cluster).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]
    assert 12 not in bonded_pairs(cluster)[0]
    # bonded by covalent radii (Na-O cutoff 3.0 Å), it would hold every water
    assert assign_fragments(cluster, ions=()).tolist() == [0] * 13
    assert assign_fragments(ase.Atoms("Na")).tolist() == [0]


def test_periodic_structures_are_refused():
    water = molecule("H2O", vacuum=5.0)
    water.pbc = True
    with pytest.raises(MBEInputError, match="field 'pbc' is periodic"):
        assign_fragments(water)
    with pytest.raises(MBEInputError, match="field 'pbc' is periodic"):
        fragment_structures([water])


def _labelled(atoms, energy):
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.zeros((len(atoms), 3)))
    return atoms


def test_fragment_structures_writes_copies_with_labels_and_ids():
    tetramer = _labelled(cyclic_tetramer(), -1.5)
    tetramer.info["mbe_parent"] = 7
    frames = [tetramer, hydrated_sodium(), ase.Atoms("Na")]
    done = fragment_structures(frames)
    assert [fragments_of(atoms).tolist() for atoms in done] == [
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
        [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4],
        [0],
    ]
    assert done[0].info["mbe_parent"] == 7
    assert done[0].get_potential_energy() == -1.5
    assert all("mbe_fragment" not in atoms.arrays for atoms in frames)


def test_existing_fragments_are_replaced_only_when_asked():
    dimer = water_dimer()
    dimer.arrays["mbe_fragment"] = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(MBEInputError, match="field 'mbe_fragment' exists already; --replace"):
        fragment_structures([water_dimer(), dimer])
    (done,) = fragment_structures([dimer], replace=True)
    assert done.arrays["mbe_fragment"].tolist() == [0, 0, 0, 1, 1, 1]
    assert dimer.arrays["mbe_fragment"].tolist() == [0, 1, 0, 1, 0, 1]


def test_subclusters_are_refused_before_any_work():
    sub = water_dimer()
    sub.info.update(mbe_parent=3, mbe_atoms=np.arange(6), mbe_order=2)
    ambiguous = water_dimer(hbond=1.26)  # refused too, but later
    with pytest.raises(MBEInputError, match=r"mbe_atoms=\[0 1 2 3 4 5\]\): field 'mbe_atoms'"):
        fragment_structures([ambiguous, sub])
