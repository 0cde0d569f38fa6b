"""Molecules as bodies in files: ``mbe_fragment`` through extended XYZ, the
sub-clusters of molecular parents (unions of whole molecules), their labelled
sets, and bad fragment input refused in one line naming file:frame and field, by
the library and by ``mtt-mbe subclusters`` / ``mtt-mbe analyze``."""

import gzip
import itertools
import math
import re

import ase
import metatensor.torch as mts
import numpy as np
import pytest
import torch
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import (
    assign_parent_ids,
    collect_sets,
    enumerate_subclusters,
    fragments_of,
    read_structures,
    write_structures,
)
from metatrain_mbe.interface.cli import main

#: per-species energy (eV) added to the Lennard-Jones labels: a molecule's own
#: energy is never the sum of the isolated-atom energies E1 below
OFFSET = {1: -13.0, 8: -2040.0, 18: -570.0}
E1 = {"H": -13.6, "O": -2041.3, "Ar": -571.0}

#: the molecules of a parent: two waters, an argon atom, an H2
MOLECULES = [
    ("OH2", [[0, 0, 0], [0.76, 0, 0.59], [-0.76, 0, 0.59]]),
    ("OH2", [[0, 0, 0], [0.76, 0, 0.59], [-0.76, 0, 0.59]]),
    ("Ar", [[0, 0, 0]]),
    ("H2", [[0, 0, 0], [0, 0, 0.74]]),
]
K = len(MOLECULES)


def molecular_parent(seed, molecules=MOLECULES):
    """Molecules 3.2 Å apart on a jittered line, their atoms shuffled in the
    parent (the fragments interleave), with ``mbe_fragment`` 0 .. K-1."""
    rng = np.random.default_rng(seed)
    symbols, positions, fragments = [], [], []
    for k, (formula, local) in enumerate(molecules):
        atoms = ase.Atoms(formula, positions=local)
        atoms.rotate(rng.uniform(0, 360), rng.normal(size=3), center=(0, 0, 0))
        symbols += atoms.get_chemical_symbols()
        positions += (atoms.positions + [3.2 * k, *rng.uniform(-0.3, 0.3, 2)]).tolist()
        fragments += [k] * len(atoms)
    order = rng.permutation(len(symbols))
    parent = ase.Atoms([symbols[i] for i in order], positions=np.array(positions)[order])
    parent.arrays["mbe_fragment"] = np.array(fragments)[order]
    return parent


def label(frames):
    """Lennard-Jones energies and forces plus :data:`OFFSET` per atom."""
    for atoms in frames:
        atoms.calc = LennardJones(sigma=1.0, epsilon=0.01, rc=100.0, smooth=False)
        energy = atoms.get_potential_energy() + sum(OFFSET[z] for z in atoms.numbers)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=atoms.get_forces())
    return frames


def labelled_frames(n_parents=1):
    parents = assign_parent_ids([molecular_parent(seed) for seed in range(n_parents)])
    return label(parents + enumerate_subclusters(parents))


def atoms_of_sub(sub):
    return [int(i) for i in np.atleast_1d(sub.info["mbe_atoms"])]


# -- files and sub-clusters ------------------------------------------------------------


@pytest.mark.parametrize("name", ["frames.xyz", "frames.xyz.gz"])
def test_fragments_round_trip_through_extended_xyz(tmp_path, name):
    frames = labelled_frames(2)
    write_structures(tmp_path / name, frames)
    if name.endswith(".gz"):
        assert gzip.decompress((tmp_path / name).read_bytes()).count(b"mbe_fragment") == len(frames)
    back = read_structures(tmp_path / name)
    assert len(back) == len(frames)
    for written, read in zip(frames, back):
        assert read.arrays["mbe_fragment"].dtype.kind == "i"
        assert fragments_of(read).tolist() == written.arrays["mbe_fragment"].tolist()
        assert read.get_chemical_symbols() == written.get_chemical_symbols()
        assert np.allclose(read.positions, written.positions)
        assert read.get_potential_energy() == written.get_potential_energy()
        if "mbe_atoms" in written.info:
            assert atoms_of_sub(read) == atoms_of_sub(written)
            assert read.info["mbe_order"] == written.info["mbe_order"]


def test_subclusters_of_molecular_parents_are_whole_molecules():
    parents = assign_parent_ids([molecular_parent(0), molecular_parent(1, MOLECULES[:3])])
    subs = enumerate_subclusters(parents)
    for parent in parents:
        fragments = parent.arrays["mbe_fragment"]
        k = int(fragments.max()) + 1
        mine = [s for s in subs if s.info["mbe_parent"] == parent.info["mbe_parent"]]
        # default orders: 1 .. K-1 molecules, C(K, m) of each
        assert len(mine) == 2**k - 2
        for m in range(1, k):
            of_order = [s for s in mine if s.info["mbe_order"] == m]
            molecules = {frozenset(fragments[atoms_of_sub(s)].tolist()) for s in of_order}
            assert molecules == {frozenset(c) for c in itertools.combinations(range(k), m)}
            assert len(of_order) == math.comb(k, m)
        for sub in mine:
            atoms = atoms_of_sub(sub)
            molecules = sorted(set(fragments[atoms].tolist()))
            assert len(molecules) == sub.info["mbe_order"]
            assert atoms == np.flatnonzero(np.isin(fragments, molecules)).tolist()
            assert sub.arrays["mbe_fragment"].tolist() == fragments[atoms].tolist()
            assert sub.get_chemical_symbols() == [parent.get_chemical_symbols()[i] for i in atoms]
            assert np.array_equal(sub.positions, parent.positions[atoms])
    pairs = enumerate_subclusters(parents[:1], [2])
    assert len(pairs) == math.comb(K, 2)
    assert {s.info["mbe_order"] for s in pairs} == {2}
    # parents without fragments keep atoms as bodies: 2 .. N-1 atoms
    plain = assign_parent_ids([ase.Atoms("Ar4", positions=np.eye(4, 3) * 3)])
    assert len(enumerate_subclusters(plain)) == math.comb(4, 2) + math.comb(4, 3)


def test_labelled_molecular_sets_hold_every_union_of_molecules(tmp_path):
    write_structures(tmp_path / "labelled.xyz", labelled_frames(2))
    frames = read_structures(tmp_path / "labelled.xyz")
    # E1 is not needed where every molecule is labelled, and not used if given
    sets, unlabelled = collect_sets(frames, {})
    assert len(sets) == 2 and unlabelled == []
    for found, also in zip(sets, collect_sets(frames, {k: 1e3 for k in E1})[0]):
        assert found.energies.tolist() == also.energies.tolist()
    labels = {
        (
            f.info["mbe_parent"],
            tuple(atoms_of_sub(f) if "mbe_atoms" in f.info else range(len(f))),
        ): f
        for f in frames
    }
    for found in sets:
        parent, plan = found.parent, found.plan
        assert (plan.n_bodies, plan.n_atoms, plan.n_subsets) == (K, len(parent), 2**K)
        # one gradient row per (sub-cluster, atom of it): each atom is in 2^(K-1) of them
        assert found.gradients.shape == (len(parent) * 2 ** (K - 1), 3)
        subset, atom, start = plan.atom_rows()
        dense = torch.zeros((plan.n_subsets, len(parent), 3), dtype=torch.float64)
        dense[subset, atom] = found.gradients
        fragments = parent.arrays["mbe_fragment"]
        assert found.energies[0].item() == 0.0
        for row, mask in enumerate(plan.masks().tolist()[1:], start=1):
            atoms = [int(i) for i in plan.atoms_in(row)]
            molecules = [k for k in range(K) if mask >> k & 1]
            assert plan.bodies(row) == molecules
            assert atoms == np.flatnonzero(np.isin(fragments, molecules)).tolist()
            assert atom[start[row] : start[row + 1]].tolist() == atoms
            sub = labels[(found.parent_id, tuple(atoms))]
            assert found.energies[row].item() == sub.get_potential_energy()
            outside = np.setdiff1d(np.arange(len(parent)), atoms)
            assert np.array_equal(dense[row, atoms].numpy(), -sub.get_forces())
            assert not dense[row, outside].any()
        terms = found.terms()
        assert terms.v.sum().item() == pytest.approx(parent.get_potential_energy(), abs=1e-9)
        # Lennard-Jones is a sum over atom pairs: nothing beyond molecule pairs
        assert terms.v[plan.orders >= 3].abs().max() < 1e-9
    # truncated at pairs of molecules: the same rows, the larger unions left out
    for found, pairs in zip(sets, collect_sets(frames, {}, max_order=2)[0]):
        assert pairs.plan.n_subsets == 1 + K + math.comb(K, 2)
        singles = [1 << i for i in range(K)]
        doubles = [(1 << i) | (1 << j) for i, j in itertools.combinations(range(K), 2)]
        assert pairs.plan.masks().tolist() == [0, *singles, *doubles]
        rows = [found.plan.find(pairs.plan.bodies(k)) for k in range(pairs.plan.n_subsets)]
        assert pairs.energies.tolist() == found.energies[rows].tolist()


def test_an_unlabelled_single_atom_molecule_takes_its_e1(tmp_path):
    frames = labelled_frames()
    fragments = frames[0].arrays["mbe_fragment"]
    argon = np.flatnonzero(fragments == 2).tolist()
    frames = [f for f in frames if "mbe_atoms" not in f.info or atoms_of_sub(f) != argon]
    (found,), _ = collect_sets(frames, E1)
    assert found.plan.is_complete
    assert found.energies[found.plan.find([2])].item() == E1["Ar"]
    with pytest.raises(MBEInputError, match="Ar"):
        collect_sets(frames, {"H": -13.6, "O": -2041.3})
    water = np.flatnonzero(fragments == 0).tolist()
    frames = [f for f in frames if "mbe_atoms" not in f.info or atoms_of_sub(f) != water]
    with pytest.raises(MBEInputError, match="incomplete"):
        collect_sets(frames, E1)


# -- bad input -----------------------------------------------------------------------


def _relabel(frames, change):
    for atoms in frames:
        if "mbe_fragment" in atoms.arrays:
            atoms.arrays["mbe_fragment"] = change(atoms.arrays["mbe_fragment"])
    return frames


def _sub(parent, atoms, order):
    sub = parent[atoms]
    sub.info = {"mbe_parent": parent.info["mbe_parent"], "mbe_atoms": np.array(atoms)}
    sub.info["mbe_order"] = order
    return label([sub])[0]


def _split(frames):
    """Molecule 0 and one atom of molecule 1."""
    parent = frames[0]
    fragments = parent.arrays["mbe_fragment"]
    atoms = sorted(np.flatnonzero(fragments == 0).tolist() + [int(np.argmax(fragments == 1))])
    return frames + [_sub(parent, atoms, 2)], {len(frames)}, "mbe_atoms"


def _one_atom(frames):
    """An atom-body sub-cluster (one H of a water) of a molecular parent."""
    parent = frames[0]
    hydrogen = int(np.flatnonzero((parent.arrays["mbe_fragment"] == 0) & (parent.numbers == 1))[0])
    return frames + [_sub(parent, [hydrogen], 1)], {len(frames)}, "mbe_atoms"


def _gap(frames):
    """Ids 0, 2, 3, 4 (the sub-clusters agree with their parent)."""
    return _relabel(frames, lambda f: f + (f >= 1)), {0}, "mbe_fragment"


def _negative(frames):
    """Ids -1 .. K-2 everywhere."""
    frames = _relabel(frames, lambda f: f - 1)
    negative = {k for k, f in enumerate(frames) if np.any(f.arrays.get("mbe_fragment", 0) < 0)}
    return frames, negative, "mbe_fragment"


def _not_whole(frames):
    frames[0].arrays["mbe_fragment"] = frames[0].arrays["mbe_fragment"] + 0.5
    return frames, {0}, "mbe_fragment"


def _mixed(frames):
    """A second parent without fragments, with its complete atom-body set."""
    plain = ase.Atoms("Ar3", positions=[[20, 0, 0], [23, 0, 0], [20, 3, 0]])
    plain.info["mbe_parent"] = 7
    extra = label([plain] + enumerate_subclusters([plain]))
    return frames + extra, {0, len(frames)}, "mbe_fragment"


def _disagrees(frames):
    """A pair of molecules whose own ids are swapped."""
    k = next(k for k, f in enumerate(frames) if f.info.get("mbe_order") == 2)
    own = frames[k].arrays["mbe_fragment"]
    low, high = sorted(set(own.tolist()))
    frames[k].arrays["mbe_fragment"] = np.where(own == low, high, low)
    return frames, {k}, "mbe_fragment"


def _declared_by_a_sub(frames):
    """Fragments on a sub-cluster of a parent that has none."""
    plain = assign_parent_ids([ase.Atoms("Ar4", positions=np.eye(4, 3) * 3)])
    frames = label(plain + enumerate_subclusters(plain))
    frames[3].arrays["mbe_fragment"] = np.arange(len(frames[3]))
    return frames, {3}, "mbe_fragment"


BAD = {
    "splits a molecule": _split,
    "atom of a molecular parent": _one_atom,
    "ids with a gap": _gap,
    "negative ids": _negative,
    "ids not whole": _not_whole,
    "parents with and without": _mixed,
    "disagrees with its parent": _disagrees,
    "fragments of an atom-body parent": _declared_by_a_sub,
}
#: the cases a parents file alone shows
OF_PARENTS = ["ids with a gap", "negative ids", "ids not whole", "parents with and without"]


def bad_file(path, case, parents_only=False):
    """Write a case's frames; return the frames the error may name and the field."""
    frames, named, field = BAD[case](labelled_frames())
    if parents_only:
        keep = [k for k, f in enumerate(frames) if "mbe_atoms" not in f.info]
        named = {keep.index(k) for k in named if k in keep}
        frames = [frames[k] for k in keep]
    write_structures(path, frames)
    return named, field


def check_message(message, path, named, field):
    assert "\n" not in message.strip(), message
    frame = re.search(rf"{re.escape(path.name)}:frame (\d+)", message)
    assert frame is not None and int(frame.group(1)) in named, message
    assert f"'{field}'" in message, message


@pytest.mark.parametrize("case", BAD)
def test_bad_fragments_are_refused_naming_file_frame_and_field(tmp_path, case):
    path = tmp_path / "bad.xyz"
    named, field = bad_file(path, case)
    with pytest.raises(MBEInputError) as error:
        collect_sets(read_structures(path), E1)
    check_message(str(error.value), path, named, field)
    if case in OF_PARENTS:
        named, field = bad_file(path, case, parents_only=True)
        with pytest.raises(MBEInputError) as error:
            enumerate_subclusters(assign_parent_ids(read_structures(path)))
        check_message(str(error.value), path, named, field)


def _listing(folder):
    return sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*"))


def run_failing(tmp_path, capsys, argv, path, named, field):
    before = _listing(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"mtt-mbe {argv[0]}: error: "), error
    check_message(error, path, named, field)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("case", OF_PARENTS)
def test_subclusters_command_refuses_bad_fragments(tmp_path, capsys, case):
    path = tmp_path / "parents.xyz"
    named, field = bad_file(path, case, parents_only=True)
    argv = ["subclusters", str(path), "-o", str(tmp_path / "subs.xyz"), "--with-parents"]
    run_failing(tmp_path, capsys, argv, path, named, field)


@pytest.mark.parametrize("case", BAD)
def test_analyze_command_refuses_bad_fragments(tmp_path, capsys, case):
    path = tmp_path / "labelled.xyz"
    named, field = bad_file(path, case)
    argv = ["analyze", str(path), "-o", str(tmp_path / "out")]
    run_failing(tmp_path, capsys, argv, path, named, field)


def test_commands_expand_molecular_parents(tmp_path, capsys):
    parents = assign_parent_ids([molecular_parent(seed) for seed in range(2)])
    write_structures(tmp_path / "parents.xyz", parents)
    subs = tmp_path / "subs.xyz"
    argv = ["subclusters", str(tmp_path / "parents.xyz"), "-o", str(subs), "--with-parents"]
    assert main(argv) == 0, capsys.readouterr().err
    frames = read_structures(subs)
    # the parents, then 2^K - 2 unions of molecules each: no isolated atom needed
    assert len(frames) == 2 * (2**K - 1)
    assert all("mbe_fragment" in f.arrays for f in frames)
    frames = label(frames)
    write_structures(tmp_path / "labelled.xyz", frames)
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "labelled.xyz"), "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    energy = mts.load(str(out / "reference" / "mbe_energy.mts"))
    assert energy.keys.values.flatten().tolist() == list(range(1, K + 1))
    for m in range(1, K + 1):
        assert len(energy.block({"order": m}).samples) == 2 * math.comb(K, m)
    for parent in frames[:2]:
        system = int(parent.info["mbe_parent"])
        total = sum(
            b.values[b.samples.column("system") == system].sum().item() for b in energy.blocks()
        )
        assert total == pytest.approx(parent.get_potential_energy(), abs=1e-9)
    assert energy.block({"order": 3}).values.abs().max() < 1e-9
    assert (out / "report.json").is_file()
