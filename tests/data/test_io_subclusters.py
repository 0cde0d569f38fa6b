import math

import ase
import numpy as np
import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import (
    assign_parent_ids,
    enumerate_subclusters,
    parse_orders,
    read_structures,
    write_structures,
)

from ..conftest import random_cluster


def test_subclusters_round_trip_through_extxyz(tmp_path):
    rng = np.random.default_rng(0)
    parents = assign_parent_ids([random_cluster(5, rng), random_cluster(4, rng)])
    parents[0].info["regime"] = "high"
    subs = enumerate_subclusters(parents, [2, 3])
    assert len(subs) == math.comb(5, 2) + math.comb(5, 3) + math.comb(4, 2) + math.comb(4, 3)
    write_structures(tmp_path / "subs.xyz", subs)
    back = read_structures(tmp_path / "subs.xyz")
    assert len(back) == len(subs)
    for sub, read in zip(subs, back):
        atoms = [int(i) for i in np.atleast_1d(read.info["mbe_atoms"])]
        parent = parents[read.info["mbe_parent"]]
        assert atoms == list(sub.info["mbe_atoms"])
        assert read.info["mbe_order"] == len(atoms) == len(read)
        assert np.allclose(read.positions, parent.positions[atoms])
        assert not read.pbc.any()
    assert back[0].info["regime"] == "high"
    assert "regime" not in back[-1].info


def test_parent_ids_are_kept_or_assigned_and_unique():
    rng = np.random.default_rng(1)
    parents = [random_cluster(3, rng) for _ in range(3)]
    parents[2].info["mbe_parent"] = 10
    assert [p.info["mbe_parent"] for p in assign_parent_ids(parents)] == [0, 1, 10]
    parents[1].info["mbe_parent"] = 10
    with pytest.raises(MBEInputError, match="'mbe_parent'=10 is also used by"):
        assign_parent_ids(parents)


def test_orders():
    assert parse_orders("2:4,7") == [2, 3, 4, 7]
    with pytest.raises(MBEInputError, match="must select orders in 2..7"):
        parse_orders("2:8", 7)
    with pytest.raises(MBEInputError, match="not a range such as 2:7"):
        parse_orders("two")


def test_unreadable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.xyz"
    path.write_text("3\nnot extxyz\nH 0 0\n")
    with pytest.raises(MBEInputError, match="broken.xyz: not a readable extended XYZ"):
        read_structures(path)
    with pytest.raises(MBEInputError, match="missing.xyz: no such file"):
        read_structures(tmp_path / "missing.xyz")


def test_periodic_parent_is_refused():
    atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]], cell=[5, 5, 5], pbc=True)
    atoms.info["_source"] = "bulk.xyz:frame 3"
    with pytest.raises(MBEInputError, match=r"bulk.xyz:frame 3: field 'pbc' is periodic"):
        assign_parent_ids([atoms])


def test_labels_survive_writing(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = random_cluster(3, np.random.default_rng(2))
    forces = np.arange(9.0).reshape(3, 3)
    atoms.calc = SinglePointCalculator(atoms, energy=-1.5, forces=forces)
    write_structures(tmp_path / "l.xyz", [atoms])
    (back,) = read_structures(tmp_path / "l.xyz")
    assert back.get_potential_energy() == -1.5
    np.testing.assert_array_equal(back.get_forces(), forces)


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_files_read_as_plain_ones(tmp_path, suffix, lj_dataset):
    import bz2
    import gzip
    import lzma

    decompress = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}[suffix]
    write_structures(tmp_path / "plain.xyz", lj_dataset)
    write_structures(tmp_path / f"c.xyz{suffix}", lj_dataset)  # compressed by its name
    assert decompress((tmp_path / f"c.xyz{suffix}").read_bytes()).startswith(b"1\n")
    plain = read_structures(tmp_path / "plain.xyz")
    packed = read_structures(tmp_path / f"c.xyz{suffix}")
    assert len(packed) == len(plain) == len(lj_dataset)
    for a, b in zip(plain, packed):
        assert a.get_potential_energy() == b.get_potential_energy()
        assert np.array_equal(a.get_forces(), b.get_forces()) and a.info.keys() == b.info.keys()
    with pytest.raises(MBEInputError, match="c.xyz.gz: not a readable"):
        (tmp_path / "c.xyz.gz").write_bytes(b"not gzip")
        read_structures(tmp_path / "c.xyz.gz")


def test_reading_once_parses_a_file_once_and_returns_independent_copies(tmp_path, monkeypatch):
    import ase.io

    from metatrain_mbe.data.io import get_energy, get_forces, reading_once

    rng = np.random.default_rng(1)
    frames = [random_cluster(3, rng) for _ in range(2)]
    for k, atoms in enumerate(frames):
        atoms.info["energy"] = -1.5 * (k + 1)
        atoms.arrays["forces"] = rng.normal(size=(3, 3))
    path = tmp_path / "labelled.xyz"
    write_structures(path, frames)
    parses = []
    real_read = ase.io.read
    monkeypatch.setattr(ase.io, "read", lambda *a, **k: parses.append(a) or real_read(*a, **k))
    with reading_once():
        first = read_structures(path)
        first[0].info["energy"] = 99.0  # a caller changing its frames changes no later read
        first[0].positions[0] += 1.0
        again = read_structures(str(path))
    assert len(parses) == 1
    for atoms, original in zip(again, frames):
        assert get_energy(atoms) == original.info["energy"]
        np.testing.assert_allclose(get_forces(atoms), original.arrays["forces"])
        np.testing.assert_allclose(atoms.positions, original.positions, atol=1e-8)
    assert again[1].info["_source"] == f"{path}:frame 1"
    read_structures(path)  # outside the block every read parses the file
    assert len(parses) == 2
