"""Sub-clusters carry their parent's per-atom arrays, and their charge is
derived from the parent's per-atom charges, never copied from its total."""

import ase
import ase.io
import numpy as np
import pytest

from metatrain_mbe.data import read_structures
from metatrain_mbe.interface.cli import main


def chain(n, spacing=1.0):
    return ase.Atoms("H" * n, positions=[[spacing * k, 0, 0] for k in range(n)])


def _subclusters(tmp_path, parents, *extra):
    ase.io.write(tmp_path / "parents.xyz", parents, format="extxyz")
    line = ["subclusters", str(tmp_path / "parents.xyz"), "-o", str(tmp_path / "subs.xyz")]
    return main([*line, *extra])


def test_per_atom_arrays_are_sliced_and_the_charge_summed(tmp_path):
    parent = chain(4)
    parent.info.update(charge=1, spin=2, regime="low")  # 3 electrons: a doublet
    parent.set_initial_charges([1, 1, 0, -1])
    parent.set_initial_magnetic_moments([1, 0, 0, 0])
    parent.set_tags([5, 6, 7, 8])
    assert _subclusters(tmp_path, [parent], "--orders", "2:3") == 0
    subs = read_structures(tmp_path / "subs.xyz")
    assert len(subs) == 6 + 4
    for sub in subs:
        atoms = list(np.atleast_1d(sub.info["mbe_atoms"]))
        for name in ("initial_charges", "initial_magmoms", "tags"):
            assert np.array_equal(sub.arrays[name], parent.arrays[name][atoms])
        assert sub.info["charge"] == parent.get_initial_charges()[atoms].sum()
        assert "spin" not in sub.info  # its 2S: the sum of its moments
        assert sub.info["regime"] == "low"
    charges = {tuple(np.atleast_1d(s.info["mbe_atoms"])): s.info["charge"] for s in subs}
    assert charges[(0, 1)] == 2 and charges[(2, 3)] == -1 and charges[(1, 2, 3)] == 0


def test_molecules_take_their_charge_from_their_atoms():
    from metatrain_mbe.data import assign_parent_ids, enumerate_subclusters

    parent = chain(6)  # three molecules, per-atom charges adding up to 1, -1 and 0
    parent.arrays["mbe_fragment"] = np.array([0, 0, 1, 1, 2, 2])
    parent.set_initial_charges([0.5, 0.5, -0.25, -0.75, 0, 0])
    parent.info["charge"] = 0
    subs = enumerate_subclusters(assign_parent_ids([parent]), [1, 2])
    charges = {tuple(s.info["mbe_atoms"]): s.info["charge"] for s in subs}
    assert charges == {
        (0, 1): 1,
        (2, 3): -1,
        (4, 5): 0,
        (0, 1, 2, 3): 0,
        (0, 1, 4, 5): 1,
        (2, 3, 4, 5): -1,
    }
    assert all(isinstance(charge, int) for charge in charges.values())
    assert subs[1].arrays["mbe_fragment"].tolist() == [1, 1]


@pytest.mark.parametrize(
    "info, moments, message",
    [
        (
            {"charge": 1},
            None,
            "field 'charge'=1 is the parent's total charge, from which "
            "sub-cluster charges cannot be derived; give per-atom 'initial_charges'",
        ),
        (
            {"spin": 3},
            None,
            "field 'spin'=3 is the parent's spin multiplicity 2S + 1, from "
            "which sub-cluster spins cannot be derived; give per-atom 'initial_magmoms'",
        ),
        ({"spin": 3}, [0, 0, 0, 0], "field 'spin'=3 is the parent's spin multiplicity"),
    ],
)
def test_a_total_its_parts_cannot_be_derived_from_is_refused(
    tmp_path, capsys, info, moments, message
):
    parents = [chain(3), chain(4)]
    parents[1].info.update(info)
    if moments is not None:
        parents[1].set_initial_magnetic_moments(moments)
    assert _subclusters(tmp_path, parents) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("mtt-mbe subclusters: error: ")
    assert "parents.xyz:frame 1 (mbe_parent=1): " + message in line
    assert not (tmp_path / "subs.xyz").exists()


def test_a_lowest_spin_or_a_neutral_total_is_not_copied(tmp_path):
    labelled = chain(3)  # a parent labelled by `mtt-mbe label`: its own state
    labelled.info.update(charge=0, spin=2)
    triplet = chain(4)
    triplet.info["spin"] = 3
    triplet.set_initial_magnetic_moments([1, 1, 0, 0])
    assert _subclusters(tmp_path, [labelled, triplet]) == 0
    subs = read_structures(tmp_path / "subs.xyz")
    assert not any("charge" in s.info or "spin" in s.info for s in subs)
    moments = {
        (s.info["mbe_parent"], *s.info["mbe_atoms"]): s.get_initial_magnetic_moments().sum()
        for s in subs
    }
    assert moments[(0, 0, 1)] == 0 and moments[(1, 0, 1)] == 2 and moments[(1, 2, 3)] == 0
