"""``mtt-mbe sample --protocol sphere``: whole molecules (or atoms) within a
radius, ready for ``subclusters``."""

import ase
import ase.io
import numpy as np
import pytest

from metatrain_mbe.interface.cli import main

from ..data.test_sampling import water_box
from .test_cli_fragments import snapshot


@pytest.fixture
def bulk(tmp_path, monkeypatch):
    """water.xyz: two periodic water boxes (64 molecules, 12.4 Å cell);
    chain.xyz: a carbon chain bonded across the cell boundary; cwd is tmp_path."""
    ase.io.write(tmp_path / "water.xyz", [water_box(seed=0), water_box(seed=5)])
    chain = ase.Atoms(
        "C4", positions=[[1 + 1.4 * k, 5, 5] for k in range(4)], cell=[5.6, 10, 10], pbc=True
    )
    ase.io.write(tmp_path / "chain.xyz", chain)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sphere_writes_whole_molecules(bulk, capsys):
    argv = ["sample", "water.xyz", "--protocol", "sphere", "--radius", "4", "-n", "6"]
    assert main([*argv, "--seed", "3", "-o", "out.xyz"]) == 0
    assert capsys.readouterr().out == "wrote 6 clusters to out.xyz\n"
    clusters = ase.io.read("out.xyz", ":")
    assert [c.info["mbe_parent"] for c in clusters] == list(range(6))
    for cluster in clusters:
        assert not cluster.pbc.any() and cluster.info["regime"] == "water"
        fragments = cluster.arrays["mbe_fragment"]
        assert fragments.tolist() == np.repeat(np.arange(len(cluster) // 3), 3).tolist()
        for k in range(fragments.max() + 1):
            water = cluster[fragments == k]
            assert sorted(water.get_chemical_symbols()) == ["H", "H", "O"]
            oxygen = water.positions[water.numbers == 8]
            oh = np.linalg.norm(water.positions[water.numbers == 1] - oxygen, axis=1)
            assert np.allclose(oh, 0.9686, atol=1e-3)
    # `mtt-mbe fragments` finds the same molecules on the written clusters
    assert main(["fragments", "out.xyz", "-o", "again.xyz", "--replace"]) == 0
    again = ase.io.read("again.xyz", ":")
    assert all(
        (a.arrays["mbe_fragment"] == c.arrays["mbe_fragment"]).all()
        for a, c in zip(again, clusters)
    )


def test_sphere_clusters_go_to_subclusters(bulk, capsys):
    argv = ["sample", "water.xyz", "--protocol", "sphere", "--radius", "3.2", "-n", "3"]
    assert main([*argv, "-o", "small.xyz"]) == 0
    molecules = [int(c.arrays["mbe_fragment"].max()) + 1 for c in ase.io.read("small.xyz", ":")]
    assert min(molecules) >= 2
    assert main(["subclusters", "small.xyz", "-o", "subs.xyz", "--orders", "1:2"]) == 0
    subs = ase.io.read("subs.xyz", ":")
    assert len(subs) == sum(k + k * (k - 1) // 2 for k in molecules)
    for sub in subs:  # unions of one or two whole waters
        assert sub.info["mbe_order"] in (1, 2) and len(sub) == 3 * sub.info["mbe_order"]
        assert sorted(sub.get_chemical_symbols()) == sorted("OHH" * sub.info["mbe_order"])


def test_sphere_of_atoms(bulk, capsys):
    argv = ["sample", "water.xyz", "--protocol", "sphere", "--radius", "3.5", "--bodies", "atoms"]
    assert main([*argv, "-n", "4", "-o", "atoms.xyz"]) == 0
    for cluster in ase.io.read("atoms.xyz", ":"):
        assert "mbe_fragment" not in cluster.arrays
        distances = np.linalg.norm(cluster.positions - cluster.positions[0], axis=1)
        assert distances.max() <= 3.5


SPHERE = "sample water.xyz --protocol sphere -n 2 -o out.xyz"


@pytest.mark.parametrize(
    "command, error",
    [
        (f"{SPHERE}", "--radius: --protocol sphere needs a radius (Å)"),
        (f"{SPHERE} --radius 0", "argument --radius: 0 is not a finite number > 0"),
        (f"{SPHERE} --radius -1", "argument --radius: -1 is not a finite number > 0"),
        (f"{SPHERE} --radius nan", "argument --radius: nan is not a finite number > 0"),
        (f"{SPHERE} --radius inf", "argument --radius: inf is not a finite number > 0"),
        (f"{SPHERE} --radius x", "argument --radius: 'x' is not a number"),
        (
            f"{SPHERE} --radius 6.3",
            "water.xyz:frame 0: --radius 6.3 Å is more than half the shortest perpendicular "
            "width 12.400 Å of the cell: the sphere would see periodic images of itself "
            "(at most 6.200 Å)",
        ),
        (f"{SPHERE} --radius 3 --size 8", "--size: --protocol sphere takes no size"),
        (f"{SPHERE} --radius 3 --bodies bonds", "argument --bodies: invalid choice: 'bonds'"),
        (f"{SPHERE} --radius 3 --bodies atoms --mult 1.2", "--mult: --bodies atoms finds no"),
        (f"{SPHERE} --radius 0.5", "1 molecule within --radius 0.5 Å of atom"),
        (
            "sample water.xyz --protocol nearest --radius 3 -n 2 -o out.xyz",
            "--radius: only --protocol sphere takes it, not nearest",
        ),
        (
            "sample water.xyz --protocol pairs --bodies atoms -n 2 -o out.xyz",
            "--bodies: only --protocol sphere takes it, not pairs",
        ),
        (
            "sample chain.xyz --protocol sphere --radius 2 -n 1 -o out.xyz",
            "chain.xyz:frame 0: the molecule of atoms 0, 1, 2, 3 (4 atoms) spans more than "
            "half the cell or is bonded to its own periodic image",
        ),
    ],
)
def test_bad_sphere_requests_are_one_line_errors(bulk, capsys, command, error):
    before = snapshot(bulk)
    assert main(command.split()) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mtt-mbe sample: error: ")
    assert captured.err.count("\n") == 1 and error in captured.err
    assert snapshot(bulk) == before  # nothing written
