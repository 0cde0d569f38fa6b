"""read_structures gives exactly the frames of ase's extended-XYZ reader, with
its checks screened for many small frames at once (the first bad frame still
named), and keeps its one-line errors; write_structures writes what ase writes,
without copying the frames."""

import bz2
import gzip
import time

import ase
import ase.io
import ase.io.extxyz
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe import MBEInputError
from metatrain_mbe.data import read_structures, write_structures
from metatrain_mbe.data.bulk import hydrogen_bulk
from metatrain_mbe.data.io import MIN_DISTANCE, SOURCE_KEY, parent_id, subcluster_atoms

from ..conftest import hydrogen_cluster


def labelled(atoms, seed, forces=True):
    rng = np.random.default_rng(seed)
    results = {"energy": -13.6 * len(atoms) + rng.normal()}
    if forces:
        results["forces"] = rng.normal(size=(len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def every_kind():
    """Every kind of structure the package writes."""
    water = ase.Atoms(
        "OH2OH2",
        positions=[[0, 0, 0], [0, 0, 0.96], [0.93, 0, -0.24], [3, 0, 0], [3, 0, 0.96], [3.9, 0, 0]],
    )
    water.info.update(mbe_parent=0, regime="low")
    water.arrays["mbe_fragment"] = np.array([0, 0, 0, 1, 1, 1], dtype=np.int32)
    labelled(water, 0)
    molecule = water[[3, 4, 5]]
    molecule.info.update(mbe_parent=0, mbe_atoms=np.array([3, 4, 5]), mbe_order=1)
    molecule.arrays["mbe_fragment"] = np.array([1, 1, 1], dtype=np.int32)
    labelled(molecule, 1)
    parent = hydrogen_cluster(6, seed=3)
    parent.info.update(mbe_parent=12, regime="high")
    labelled(parent, 2)
    pair = parent[[1, 4]]
    pair.info.update(mbe_parent=12, mbe_atoms=np.array([1, 4]), mbe_order=2, regime="high")
    labelled(pair, 3)
    one = parent[[5]]
    one.info.update(mbe_parent=12, mbe_atoms=np.array([5]), mbe_order=1)
    labelled(one, 4)
    unlabelled = hydrogen_cluster(4, seed=5)
    unlabelled.info.update(mbe_parent=13, regime="high", weight=0.5, note="two words")
    isolated = labelled(ase.Atoms("H"), 6, forces=False)
    energy_only = labelled(hydrogen_cluster(3, seed=7), 7, forces=False)
    energy_only.info["mbe_parent"] = 14
    nine = labelled(hydrogen_cluster(10, seed=9)[1:], 9)  # nine numbers: a matrix to libextxyz
    nine.info.update(
        mbe_parent=15, mbe_atoms=np.arange(1, 10), mbe_order=9, spectrum=np.ones(9) / 3
    )
    bulk = labelled(hydrogen_bulk("high", n_atoms=8, seed=0), 8)
    bulk.arrays["charge_density"] = np.linspace(0.0, 1.0, len(bulk))
    bulk.arrays["flag"] = np.arange(len(bulk)) % 2 == 0
    return [water, molecule, parent, pair, one, unlabelled, isolated, energy_only, nine, bulk]


def assert_same_frames(expected, actual):
    """Same frames, to the bit and the type: positions, numbers, cell, pbc,
    info, arrays and the calculator's results."""
    assert len(actual) == len(expected)
    for x, y in zip(expected, actual):
        assert x.numbers.dtype == y.numbers.dtype and np.array_equal(x.numbers, y.numbers)
        assert x.positions.dtype == y.positions.dtype
        assert np.array_equal(x.positions, y.positions, equal_nan=True)
        assert np.array_equal(x.cell.array, y.cell.array) and np.array_equal(x.pbc, y.pbc)
        assert list(x.info) == list(y.info)
        for key, value in x.info.items():
            assert type(y.info[key]) is type(value), key
            if isinstance(value, np.ndarray):
                assert value.dtype == y.info[key].dtype and np.array_equal(value, y.info[key])
            else:
                assert y.info[key] == value, key
        assert list(x.arrays) == list(y.arrays)
        for key, value in x.arrays.items():
            assert value.dtype == y.arrays[key].dtype and np.array_equal(value, y.arrays[key])
        assert (x.calc is None) == (y.calc is None)
        if x.calc is not None:
            assert list(x.calc.results) == list(y.calc.results)
            for key, value in x.calc.results.items():
                assert type(y.calc.results[key]) is type(value), key
                assert np.array_equal(value, y.calc.results[key])


def without_source(frames):
    for atoms in frames:
        atoms.info.pop(SOURCE_KEY)
    return frames


@pytest.fixture
def kinds_file(tmp_path):
    path = tmp_path / "kinds.xyz"
    write_structures(path, every_kind())
    return path


def test_every_kind_is_read_as_ase_reads_it(kinds_file):
    expected = ase.io.read(kinds_file, index=":", format="extxyz")
    frames = read_structures(kinds_file)
    assert [atoms.info[SOURCE_KEY] for atoms in frames] == [
        f"{kinds_file}:frame {k}" for k in range(len(expected))
    ]
    assert_same_frames(expected, without_source(frames))
    water, molecule = frames[:2]
    assert (
        water.info["regime"] == "low" and water.arrays["mbe_fragment"].tolist() == [0] * 3 + [1] * 3
    )
    assert molecule.info["mbe_atoms"].tolist() == [3, 4, 5]
    assert "forces" not in water.arrays and water.calc.results["forces"].shape == (6, 3)


def test_a_compressed_file_is_read_as_ase_reads_it(tmp_path, kinds_file):
    path = tmp_path / "kinds.xyz.gz"
    path.write_bytes(gzip.compress(kinds_file.read_bytes()))
    expected = ase.io.read(kinds_file, index=":", format="extxyz")
    assert_same_frames(expected, without_source(read_structures(path)))


HEADER = 'Properties=species:S:1:pos:R:3 pbc="F F F"'


@pytest.mark.parametrize(
    "text",
    [
        f"2 atoms\n{HEADER}\nH 0 0 0\nH 0 0 1\n",
        f"2\n{HEADER}\nH 0 0 0\nH 0 0\n",
        f"2\n{HEADER}\nH 0 0 0\nH 0 0 1\nnot a count\n",
    ],
)
def test_malformed_files_are_refused_in_one_line(tmp_path, text):
    path = tmp_path / "broken.xyz"
    path.write_text(text)
    with pytest.raises(Exception) as by_ase:
        ase.io.read(path, index=":", format="extxyz")
    with pytest.raises(MBEInputError) as error:
        read_structures(path)
    message = str(error.value)
    assert "\n" not in message
    assert message == f"{path}: not a readable extended XYZ file ({by_ase.value})"


TWO = f"2\n{HEADER}\nH 0 0 0\nH 0 0 1\n"  # a sound two-atom frame


@pytest.mark.parametrize(
    "name, text, frame, line, count, left",
    [
        ("huge.xyz", f"999999999999\n{HEADER}\nH 0 0 0\n", 0, 1, 999999999999, 2),
        ("int32.xyz.gz", f"{TWO}2147483648\n{HEADER}\nH 0 0 0\n", 1, 5, 2147483648, 2),
        ("one_more.xyz", f"{TWO}3\n{HEADER}\nH 0 0 0\nH 0 0 1\n", 1, 5, 3, 3),
        ("one_more.xyz.bz2", f"{TWO}3\n{HEADER}\nH 0 0 0\nH 0 0 1\n", 1, 5, 3, 3),
        ("short.xyz", f"3\n{HEADER}\nH 0 0 0\nH 0 0 1\n", 0, 1, 3, 3),
        ("short_second.xyz", f"{TWO}5\n{HEADER}\nH 0 0 0\n", 1, 5, 5, 2),
        ("after_vec.xyz", f"1\n{HEADER}\nH 0 0 0\nVEC1 9 0 0\n{10**12}\n", 1, 5, 10**12, 0),
    ],
)
def test_an_atom_count_beyond_the_file_is_refused_at_once(
    tmp_path, name, text, frame, line, count, left
):
    path = tmp_path / name
    opener = {".gz": gzip.compress, ".bz2": bz2.compress}.get(path.suffix, lambda data: data)
    path.write_bytes(opener(text.encode()))
    start = time.perf_counter()
    with pytest.raises(MBEInputError) as error:
        read_structures(path)
    assert time.perf_counter() - start < 0.5  # ase's reader would loop over every announced atom
    assert str(error.value) == (
        f"{path}: not a readable extended XYZ file (frame {frame}: line {line} announces "
        f"{count} atoms but the file has {left} more lines)"
    )


def test_exact_atom_counts_and_cell_vectors_still_read(tmp_path):
    path = tmp_path / "sound.xyz"
    path.write_text(f"1\n{HEADER}\nH 0 0 0\nVEC1 9 0 0\n{TWO}")
    assert [len(atoms) for atoms in read_structures(path)] == [1, 2]


def test_the_first_frame_with_close_atoms_is_named(tmp_path):
    frames = [hydrogen_cluster(n, seed=n) for n in (2, 3, 3, 4, 3, 2)]
    frames[4].positions[2] = frames[4].positions[0] + [0.0, 0.6 * MIN_DISTANCE, 0.0]
    frames[5].positions[1] = frames[5].positions[0] + [0.0, 0.0, 0.9 * MIN_DISTANCE]
    bulk = hydrogen_bulk("high", n_atoms=16, seed=0)
    bulk.positions[5] = bulk.positions[2] + bulk.cell[0] - [0.01, 0.0, 0.0]
    path = tmp_path / "close.xyz"
    ase.io.write(path, frames[:3] + [bulk] + frames[3:], format="extxyz")
    with pytest.raises(
        MBEInputError, match=r"close.xyz:frame 3: field 'positions' puts atoms 2 and 5"
    ):
        read_structures(path)
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(
        MBEInputError, match=r"close.xyz:frame 4: field 'positions' puts atoms 0 and 2"
    ):
        read_structures(path)
    frames[4].positions[2] += [0.0, 0.5 * MIN_DISTANCE, 0.0]  # 1.1 MIN_DISTANCE apart: sound
    ase.io.write(path, frames[:5], format="extxyz")
    assert len(read_structures(path)) == 5


def test_written_files_are_read_back_by_ase(tmp_path):
    frames = every_kind()
    frames[0].info[SOURCE_KEY] = "input.xyz:frame 0"
    write_structures(tmp_path / "out.xyz", frames)
    assert frames[0].info[SOURCE_KEY] == "input.xyz:frame 0"  # the frames are as given
    assert SOURCE_KEY not in (tmp_path / "out.xyz").read_text()
    del frames[0].info[SOURCE_KEY]
    ase.io.write(tmp_path / "by_ase.xyz", frames, format="extxyz")
    assert (tmp_path / "out.xyz").read_text() == (tmp_path / "by_ase.xyz").read_text()
    read_back = ase.io.read(tmp_path / "out.xyz", index=":")
    for atoms, written in zip(frames, read_back):
        assert np.array_equal(atoms.numbers, written.numbers)
        np.testing.assert_allclose(written.positions, atoms.positions, atol=1e-8)
        if atoms.calc is not None:
            assert written.calc.results["energy"] == atoms.calc.results["energy"]


ID_RULE = "ids are ints within int64 or whole floats of magnitude below 2^53"


def test_ids_are_read_exactly_or_refused(tmp_path):
    pair = hydrogen_cluster(2)
    pair.info.update(mbe_parent=2**63 - 1, mbe_atoms=np.array([0, 2**62 + 1]))
    write_structures(tmp_path / "huge.xyz", [pair])
    (atoms,) = read_structures(tmp_path / "huge.xyz")
    assert parent_id(atoms) == 2**63 - 1 and subcluster_atoms(atoms) == [0, 2**62 + 1]
    pair.info["mbe_parent"] = 10**23  # beyond int64: ase reads its digits as a float
    write_structures(tmp_path / "past.xyz", [pair])
    (atoms,) = read_structures(tmp_path / "past.xyz")
    with pytest.raises(MBEInputError) as error:
        parent_id(atoms)
    assert str(error.value) == (
        f"{tmp_path / 'past.xyz'}:frame 0 (mbe_parent=1e+23, mbe_atoms=[0 4611686018427387905]): "
        f"field 'mbe_parent' is not an integer (got 1e+23); {ID_RULE}"
    )


@pytest.mark.parametrize(
    "info, message",
    [
        (
            {"mbe_parent": 1e23},
            "(mbe_parent=1e+23): field 'mbe_parent' is not an integer (got 1e+23)",
        ),
        ({"mbe_parent": 2.5}, "(mbe_parent=2.5): field 'mbe_parent' is not an integer (got 2.5)"),
        (
            {"mbe_parent": np.nan},
            "(mbe_parent=nan): field 'mbe_parent' is not an integer (got nan)",
        ),
        (
            {"mbe_parent": 1, "mbe_atoms": np.array([0, 1e23])},
            "(mbe_parent=1, mbe_atoms=[0 1e+23]): field 'mbe_atoms' is not a list of integers "
            "(got 1e+23 at position 1)",
        ),
        (
            {"mbe_parent": 1, "mbe_atoms": np.array([0, 2.5])},
            "(mbe_parent=1, mbe_atoms=[0 2.5]): field 'mbe_atoms' is not a list of integers "
            "(got 2.5 at position 1)",
        ),
        (
            {"mbe_parent": 1, "mbe_atoms": np.array([0, np.nan])},
            "(mbe_parent=1, mbe_atoms=[0 nan]): field 'mbe_atoms' is not a list of integers "
            "(got nan at position 1)",
        ),
    ],
)
def test_ids_that_are_no_exact_integer_are_refused_in_one_line(tmp_path, info, message):
    pair = hydrogen_cluster(2)
    pair.info.update(info)
    write_structures(tmp_path / "ids.xyz", [pair])
    (atoms,) = read_structures(tmp_path / "ids.xyz")
    with pytest.raises(MBEInputError) as error:
        subcluster_atoms(atoms) if "mbe_atoms" in info else parent_id(atoms)
    assert str(error.value) == f"{tmp_path / 'ids.xyz'}:frame 0 {message}; {ID_RULE}"


def test_an_empty_frame_is_refused_where_it_is(tmp_path):
    path = tmp_path / "gap.xyz"
    path.write_text(f"{TWO}0\n{HEADER}\n{TWO}")
    with pytest.raises(MBEInputError) as error:
        read_structures(path)
    assert str(error.value) == f"{path}:frame 1: no atoms"
