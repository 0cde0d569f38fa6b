"""``mtt-mbe fragments``: molecules written into every structure of a file."""

import hashlib
import subprocess
import sys

import ase
import ase.io
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from metatrain_mbe.interface.cli import main

from ..data.test_fragments import cyclic_tetramer, hydrated_sodium, water_dimer

TETRAMER = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
SODIUM = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4]


@pytest.fixture
def clusters(tmp_path, monkeypatch):
    """clusters.xyz: a labelled water tetramer (mbe_parent 7), Na+(H2O)4 and
    an isolated Na atom; cwd is tmp_path."""
    tetramer = cyclic_tetramer()
    tetramer.info["mbe_parent"] = 7
    forces = np.arange(36.0).reshape(12, 3) / 100
    tetramer.calc = SinglePointCalculator(tetramer, energy=-2.25, forces=forces)
    ase.io.write(tmp_path / "clusters.xyz", [tetramer, hydrated_sodium(), ase.Atoms("Na")])
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(root):
    """Every file and folder under ``root`` (hidden ones too) with a hash of its content."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
        for path in sorted(root.rglob("*"))
    }


def _fragments(path):
    return [atoms.arrays["mbe_fragment"].tolist() for atoms in ase.io.read(path, ":")]


def test_fragments_are_written_into_every_structure(clusters, capsys):
    assert main(["fragments", "clusters.xyz", "-o", "out.xyz"]) == 0
    assert capsys.readouterr().out == "wrote 3 structures with 1 to 5 fragments to out.xyz\n"
    assert _fragments("out.xyz") == [TETRAMER, SODIUM, [0]]
    tetramer = ase.io.read("out.xyz", 0)
    assert tetramer.info["mbe_parent"] == 7
    assert tetramer.get_potential_energy() == -2.25
    assert tetramer.get_forces()[11].tolist() == [0.33, 0.34, 0.35]
    assert sorted(p.name for p in clusters.iterdir()) == ["clusters.xyz", "out.xyz"]


def test_ions_and_mult_flags(clusters, capsys):
    assert main(["fragments", "clusters.xyz", "-o", "none.xyz", "--ions", "none"]) == 0
    assert _fragments("none.xyz")[1] == [0] * 13
    assert main(["fragments", "clusters.xyz", "-o", "k.xyz", "--ions", "K, Cl"]) == 0
    assert _fragments("k.xyz")[1] == [0] * 13
    ase.io.write("dimer.xyz", water_dimer(hbond=1.6))
    assert main(["fragments", "dimer.xyz", "-o", "dimer2.xyz", "--mult", "2"]) == 0
    assert _fragments("dimer2.xyz") == [[0] * 6]


def test_existing_fragments_need_replace(clusters, capsys):
    dimer = water_dimer()
    dimer.arrays["mbe_fragment"] = np.array([1, 0, 1, 0, 1, 0])
    ase.io.write("declared.xyz", [water_dimer(), dimer])
    assert main(["fragments", "declared.xyz", "-o", "out.xyz"]) == 2
    error = capsys.readouterr().err
    assert error == (
        "mtt-mbe fragments: error: declared.xyz:frame 1: field 'mbe_fragment' exists "
        "already; --replace replaces it\n"
    )
    assert main(["fragments", "declared.xyz", "-o", "out.xyz", "--replace"]) == 0
    assert _fragments("out.xyz") == [[0, 0, 0, 1, 1, 1]] * 2


def test_an_existing_output_needs_overwrite(clusters, capsys):
    (clusters / "out.xyz").write_text("a user's file\n")
    assert main(["fragments", "clusters.xyz", "-o", "out.xyz"]) == 2
    assert "out.xyz: already exists; --overwrite replaces it" in capsys.readouterr().err
    assert (clusters / "out.xyz").read_text() == "a user's file\n"
    assert main(["fragments", "clusters.xyz", "-o", "out.xyz", "--overwrite"]) == 0
    assert _fragments("out.xyz") == [TETRAMER, SODIUM, [0]]


def _periodic():
    water = molecule("H2O", vacuum=4.0)
    water.pbc = True
    return water


def _subcluster():
    sub = water_dimer()
    sub.info.update(mbe_parent=0, mbe_atoms=np.arange(6), mbe_order=2)
    return sub


@pytest.mark.parametrize(
    "bad, flags, message",
    [
        (
            lambda: water_dimer(hbond=1.26),
            [],
            "bad.xyz:frame 1: atoms 0 (O) and 4 (H) are 1.260 Å apart, within 10% of their "
            "bond cutoff 1.261 Å (mult 1.3)",
        ),
        (water_dimer, ["--mult", "1.0"], "bad.xyz:frame 0: atoms 0 (O) and 1 (H) are 0.960 Å"),
        (_periodic, [], "bad.xyz:frame 1: field 'pbc' is periodic"),
        (_subcluster, [], "bad.xyz:frame 1 (mbe_parent=0, mbe_atoms=[0 1 2 3 4 5]): field "),
    ],
    ids=["ambiguous", "mult 1", "periodic", "sub-cluster"],
)
def test_bad_structures_are_one_line_exit_2_and_write_nothing(
    clusters, capsys, bad, flags, message
):
    ase.io.write("bad.xyz", [water_dimer(), bad()])
    before = snapshot(clusters)
    assert main(["fragments", "bad.xyz", "-o", "new/out.xyz", *flags]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("mtt-mbe fragments: error: "), error
    assert message in error, error
    assert snapshot(clusters) == before


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--mult", "0"], "argument --mult: 0 is not a finite number > 0"),
        (["--mult", "inf"], "argument --mult: inf is not a finite number > 0"),
        (["--mult", "x"], "argument --mult: 'x' is not a number"),
        (["--ions", "Na,Xx"], "argument --ions: 'Xx' is not an element symbol"),
    ],
)
def test_bad_flags_are_reported_before_torch_loads(clusters, flags, message):
    code = (
        "import sys; from metatrain_mbe.interface.cli import main; "
        f"code = main(['fragments', 'clusters.xyz', '-o', 'out.xyz', *{flags!r}]); "
        "assert 'torch' not in sys.modules; sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"mtt-mbe fragments: error: {message}\n"
    assert not (clusters / "out.xyz").exists()
