"""Hostile input against every ``mtt-mbe`` command.

Each bad command line must end in one stderr line naming what is wrong (the
flag, or the file and frame and field), exit with code 2, and leave every file
of the working folder as it was; a good command beside each group shows the
same inputs are otherwise accepted. Unexpected faults end in one line too, with
exit code 1 and the traceback in a log file.
"""

import argparse
import hashlib
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import ase
import ase.io
import numpy as np
import pytest
from ase.calculators.calculator import Calculator

from metatrain_mbe.data import enumerate_subclusters, isolated_atoms
from metatrain_mbe.data.bulk import hydrogen_bulk
from metatrain_mbe.interface.cli import build_parser, main

from ..conftest import hydrogen_cluster
from ..data.test_fragments import water_dimer
from .conftest import lj_hydrogen_label

LJ = "ase.calculators.lj:LennardJones"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The inputs of every case, made once: see :func:`workdir`."""
    root = tmp_path_factory.mktemp("hostile")
    parents = [hydrogen_cluster(4, seed=k) for k in range(4)]
    for k, parent in enumerate(parents):
        parent.info["mbe_parent"] = 100 + k
    ase.io.write(root / "parents.xyz", lj_hydrogen_label(parents))
    frames = isolated_atoms(parents) + [p.copy() for p in parents] + enumerate_subclusters(parents)
    ase.io.write(root / "subclusters.xyz", lj_hydrogen_label(frames))
    ase.io.write(root / "bulk.xyz", [hydrogen_bulk("high", 8, seed) for seed in range(2)])
    ase.io.write(root / "h2.xyz", [ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])])
    (root / "garbage.xyz").write_text("garbage\nmore garbage\n")
    (root / "empty.xyz").write_text("")
    (root / "afile").write_text("a user's file\n")
    (root / "adir").mkdir()
    (root / "adir" / "keep.txt").write_text("keep\n")
    (root / "exists.xyz").write_text("a user's results\n")
    (root / "old" / "figures").mkdir(parents=True)
    (root / "old" / "report.md").write_text("old report\n")
    (root / "old" / "report.json").write_text("{}\n")
    (root / "old" / "figures" / "old.png").write_text("old figure\n")
    argon = [hydrogen_cluster(3, seed=k) for k in range(2)]
    for atoms in argon:
        atoms.numbers[:] = 18
    ase.io.write(root / "argon.xyz", lj_hydrogen_label(argon))
    (root / "argon.yaml").write_text("systems: argon.xyz\ntargets: {energy: {key: energy}}\n")
    parent = hydrogen_cluster(4, seed=1)
    parent.info["mbe_parent"] = 0
    for name, edit in _DATA_EDITS.items():
        atoms = parent.copy()
        edit(atoms)
        ase.io.write(root / name, [atoms])
    _write_waters(root)
    return root


@pytest.fixture(autouse=True)
def log_folder(tmp_path, monkeypatch):
    """Where an unexpected fault's log goes (the temporary folder): per test."""
    folder = tmp_path / "logs"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def workdir(template, tmp_path, monkeypatch):
    """A copy of the inputs; cwd is the folder.

    parents.xyz (4 labelled 4-atom parents, ids 100..103), subclusters.xyz (the
    analyze input: isolated atom, parents, every sub-cluster), bulk.xyz (2
    periodic 8-atom frames), h2.xyz (one H2), garbage.xyz, empty.xyz, afile (a
    text file), adir/ (a folder), exists.xyz (a user's file), old/ (an old
    report), argon.xyz and argon.yaml (data and eval options for a species the
    models do not know), and the data-layer cases nan.xyz, coincident.xyz,
    half.xyz (mbe_parent=1.5) and thirty.xyz (a 30-atom parent); for
    fragments, water.xyz, fragmented.xyz and ambiguous.xyz (see
    :func:`_write_waters`).
    """
    root = tmp_path / "work"
    shutil.copytree(template, root)
    monkeypatch.chdir(root)
    return root


def _nan(atoms):
    atoms.positions[1] = np.nan


def _coincident(atoms):
    atoms.positions[1] = atoms.positions[0]


def _half_id(atoms):
    atoms.info["mbe_parent"] = 1.5


def _thirty(atoms):
    del atoms[:]
    atoms.extend(hydrogen_cluster(30, seed=2))


def _write_waters(root):
    """water.xyz (a water dimer, H...O 1.85 Å), fragmented.xyz (the dimer with
    mbe_fragment) and ambiguous.xyz (H...O 1.26 Å, at the O-H bond cutoff)."""
    ase.io.write(root / "water.xyz", [water_dimer()])
    declared = water_dimer()
    declared.arrays["mbe_fragment"] = np.array([0, 0, 0, 1, 1, 1])
    ase.io.write(root / "fragmented.xyz", [declared])
    ase.io.write(root / "ambiguous.xyz", [water_dimer(hbond=1.26)])


_DATA_EDITS = {
    "nan.xyz": _nan,
    "coincident.xyz": _coincident,
    "half.xyz": _half_id,
    "thirty.xyz": _thirty,
}


def snapshot(root):
    """Every file and folder under ``root`` (hidden ones too) with a hash of its content."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
        for path in sorted(root.rglob("*"))
    }


def data_layer(line, message):
    """A case the data layer (not the CLI) must refuse."""
    return pytest.param(line, message, id=line)


# (command line, what the line must say); each runs in ``workdir``
BAD = {
    "bulk": [
        ("bulk --regime high --atoms 0 -o b.xyz", "argument --atoms: 0 is not"),
        ("bulk --regime high --atoms 1 -o b.xyz", "argument --atoms: 1 is not"),
        ("bulk --regime high --atoms -5 -o b.xyz", "argument --atoms: -5 is not"),
        ("bulk --regime high --atoms x -o b.xyz", "argument --atoms: 'x' is not an integer"),
        ("bulk --regime low --atoms 7 -o b.xyz", "--atoms: 7 is odd"),
        ("bulk --regime high -n 0 -o b.xyz", "argument -n/--frames: 0 is not"),
        ("bulk --regime high --seed -1 -o b.xyz", "argument --seed: -1 is not a random seed"),
        ("bulk --regime medium -o b.xyz", "argument --regime: invalid choice: 'medium'"),
        ("bulk --regime high -o exists.xyz", "exists.xyz: already exists; --overwrite"),
        ("bulk --regime high -o afile/b.xyz", "afile is a file, not a folder"),
        ("bulk --regime high -o adir", "adir: is a folder, expected a file"),
        ("bulk --regime high", "the following arguments are required: -o/--output"),
    ],
    "sample": [
        ("sample bulk.xyz --protocol nearest --size -3 -n 2 -o s.xyz", "--size: -3 is not"),
        ("sample bulk.xyz --protocol nearest --size 0 -n 2 -o s.xyz", "--size: 0 is not"),
        ("sample bulk.xyz --protocol nearest --size 1 -n 2 -o s.xyz", "--size: 1 is not"),
        ("sample bulk.xyz --protocol nearest -n 0 -o s.xyz", "-n/--count: 0 is not"),
        ("sample bulk.xyz --protocol nearest -n 1000 -o s.xyz", "--count: 1000 clusters"),
        ("sample bulk.xyz --protocol nearest --size 9 -n 2 -o s.xyz", "fewer than --size 9"),
        ("sample bulk.xyz --protocol any -n 2 -o s.xyz", "invalid choice: 'any'"),
        ("sample bulk.xyz --protocol nearest -n 2 --first-id -4 -o s.xyz", "--first-id: -4"),
        ("sample missing.xyz --protocol nearest -n 2 -o s.xyz", "missing.xyz: no such file"),
        ("sample garbage.xyz --protocol nearest -n 2 -o s.xyz", "garbage.xyz:line 1: not an"),
        ("sample empty.xyz --protocol nearest -n 2 -o s.xyz", "empty.xyz: empty"),
        ("sample adir --protocol nearest -n 2 -o s.xyz", "adir: not a file"),
        ("sample parents.xyz --protocol nearest -n 2 -o s.xyz", "frame 0 (mbe_parent=100)"),
        ("sample bulk.xyz --protocol nearest -n 2 -o exists.xyz", "exists.xyz: already exists"),
    ],
    "subclusters": [
        ("subclusters missing.xyz -o s.xyz", "missing.xyz: no such file"),
        ("subclusters garbage.xyz -o s.xyz", "garbage.xyz:line 1"),
        ("subclusters parents.xyz -o exists.xyz", "exists.xyz: already exists"),
        ("subclusters parents.xyz -o afile/s.xyz", "afile is a file, not a folder"),
        ("subclusters parents.xyz -o s.xyz --orders abc", "--orders"),
        ("subclusters parents.xyz -o s.xyz --orders 2:9", "--orders"),
        ("subclusters parents.xyz -o s.xyz --ids 7000", "no parent has an mbe_parent id"),
        ("subclusters parents.xyz -o s.xyz --ids x", "--ids"),
        data_layer("subclusters nan.xyz -o s.xyz", "nan.xyz:frame 0"),
        data_layer("subclusters coincident.xyz -o s.xyz", "coincident.xyz:frame 0"),
        data_layer("subclusters half.xyz -o s.xyz", "half.xyz:frame 0"),
        data_layer("subclusters thirty.xyz -o s.xyz", "thirty.xyz:frame 0"),
    ],
    "fragments": [
        ("fragments missing.xyz -o f.xyz", "missing.xyz: no such file"),
        ("fragments garbage.xyz -o f.xyz", "garbage.xyz:line 1: not an extended XYZ file"),
        ("fragments empty.xyz -o f.xyz", "empty.xyz: empty"),
        ("fragments adir -o f.xyz", "adir: not a file"),
        ("fragments water.xyz -o exists.xyz", "exists.xyz: already exists; --overwrite"),
        ("fragments water.xyz -o exists.xyz", "exists.xyz: already exists; --overwrite"),
        ("fragments water.xyz -o afile/f.xyz", "afile is a file, not a folder"),
        ("fragments water.xyz -o adir", "adir: is a folder, expected a file"),
        ("fragments water.xyz", "the following arguments are required: -o/--output"),
        ("fragments water.xyz -o f.xyz --mult 0", "argument --mult: 0 is not a finite number > 0"),
        ("fragments water.xyz -o f.xyz --mult -1", "argument --mult: -1 is not a finite number"),
        ("fragments water.xyz -o f.xyz --mult nan", "argument --mult: nan is not a finite"),
        ("fragments water.xyz -o f.xyz --mult x", "argument --mult: 'x' is not a number"),
        ("fragments water.xyz -o f.xyz --ions Xx", "argument --ions: 'Xx' is not an element"),
        data_layer("fragments nan.xyz -o f.xyz", "nan.xyz:frame 0"),
        data_layer("fragments coincident.xyz -o f.xyz", "coincident.xyz:frame 0"),
        data_layer("fragments bulk.xyz -o f.xyz", "bulk.xyz:frame 0: field 'pbc' is periodic"),
        data_layer(
            "fragments subclusters.xyz -o f.xyz",
            "subclusters.xyz:frame 5 (mbe_parent=100, mbe_atoms=[0 1]): field 'mbe_atoms' "
            "marks a sub-cluster",
        ),
        data_layer(
            "fragments fragmented.xyz -o new/f.xyz",
            "fragmented.xyz:frame 0: field 'mbe_fragment' exists already; --replace",
        ),
        data_layer(
            "fragments ambiguous.xyz -o new/f.xyz",
            "ambiguous.xyz:frame 0: atoms 0 (O) and 4 (H) are 1.260 Å apart",
        ),
        data_layer("fragments water.xyz -o f.xyz --mult 1", "water.xyz:frame 0: atoms 0 (O)"),
    ],
    "label": [
        (f"label h2.xyz -o l.xyz --calculator {LJ} --workers 0", "--workers: 0 is not"),
        (f"label h2.xyz -o l.xyz --calculator {LJ} --workers -1", "--workers: -1 is not"),
        ("label h2.xyz -o l.xyz --grid-level 12", "--grid-level: invalid choice: 12"),
        ("label h2.xyz -o l.xyz --smearing -1", "--smearing: -1 is not a finite number"),
        ("label h2.xyz -o l.xyz --smearing nan", "--smearing: nan is not a finite number"),
        ("label h2.xyz -o l.xyz --unpaired -2", "--unpaired: -2 is not"),
        ("label h2.xyz -o l.xyz --spin none", "--spin: invalid choice"),
        ("label h2.xyz -o l.xyz --calculator lennardjones", "neither pyscf nor module:Class"),
        ("label h2.xyz -o l.xyz --calc-kwargs [1]", "--calc-kwargs: must be a JSON object"),
        ("label h2.xyz -o l.xyz --calc-kwargs {bad", "--calc-kwargs: not JSON"),
        ("label h2.xyz -o exists.xyz", "exists.xyz: already exists"),
        ("label missing.xyz -o l.xyz", "missing.xyz: no such file"),
        ("label h2.xyz -o l.xyz --store afile/s.db", "afile is a file, not a folder"),
        data_layer("label h2.xyz -o l.xyz --calculator nosuch.module:Calc", "nosuch"),
        data_layer("label h2.xyz -o l.xyz --calculator ase.calculators.lj:Nope", "Nope"),
        data_layer("label h2.xyz -o l.xyz --store garbage.xyz", "garbage.xyz: not a"),
        data_layer('label h2.xyz -o l.xyz --calc-kwargs {"fix_spn":true}', "fix_spn"),
        data_layer(f"label nan.xyz -o l.xyz --calculator {LJ}", "nan.xyz:frame 0"),
    ],
    "analyze": [
        ("analyze missing.xyz -o out", "argument labelled: missing.xyz: no such file"),
        ("analyze garbage.xyz -o out", "garbage.xyz:line 1: not an extended XYZ file"),
        ("analyze empty.xyz -o out", "empty.xyz: empty"),
        ("analyze subclusters.xyz -o out --max-order 1", "--max-order: 1 is not a body order"),
        ("analyze subclusters.xyz -o out --max-order 0", "--max-order: 0 is not"),
        ("analyze subclusters.xyz -o out --max-atoms 1", "--max-atoms: 1 is not"),
        ("analyze subclusters.xyz -o out --subcluster-batch-size 0", "batch-size: 0 is not"),
        ("analyze subclusters.xyz -o out --batch-layout diagonal", "invalid choice: 'diagonal'"),
        ("analyze subclusters.xyz -o old", "old: already exists; --overwrite replaces it"),
        ("analyze subclusters.xyz -o afile", "afile: is a file, expected a folder"),
        ("analyze subclusters.xyz -o afile/out", "afile is a file, not a folder"),
        ("analyze subclusters.xyz -o out --model missing.pt", "missing.pt: no such file"),
        ("analyze subclusters.xyz -o out --model parents.xyz", "not an exported (TorchScript)"),
        ("analyze subclusters.xyz -o out --device gpu", "'gpu' is not a torch device"),
        ("analyze subclusters.xyz -o out --device cuda:99", "--device cuda:99: no such CUDA"),
        ("analyze subclusters.xyz -o out --training missing.xyz", "--training: missing.xyz"),
        ("analyze subclusters.xyz -o out --parents -1", "--parents: -1 is not"),
        ("analyze subclusters.xyz -o out --e1 H=abc", "H=abc"),
        ("analyze parents.xyz -o new/deep/out", "parents.xyz"),
    ],
    "train": [
        ("train missing.yaml", "missing.yaml: no such file"),
        ("train adir", "adir: not a file"),
        ("train afile -o exists.xyz", "exists.xyz: already exists"),
        ("train afile --restart missing.ckpt", "--restart: missing.ckpt: no such file"),
        ("train afile -o adir", "adir: is a folder, expected a file"),
    ],
    "eval": [
        ("eval missing.pt afile", "missing.pt: no such file"),
        ("eval parents.xyz afile", "parents.xyz: not an exported (TorchScript) model"),
        ("eval MODEL missing.yaml", "missing.yaml: no such file"),
        ("eval MODEL afile -b 0", "--batch-size: 0 is not"),
        ("eval MODEL afile -o exists.xyz", "exists.xyz: already exists"),
        ("eval MODEL afile --mbe-output afile", "afile: is a file, expected a folder"),
        ("eval MODEL afile --max-order 1", "--max-order: 1 is not"),
        ("eval MODEL afile --device cuda:99", "--device cuda:99: no such CUDA device"),
        ("eval MODEL argon.yaml --device cuda:99", "--device cuda:99: no such CUDA device"),
        pytest.param(
            "eval MODEL argon.yaml -o new/pred.xyz",
            "argon.xyz",
            id="eval with a model for other species",
        ),
        ("eval MODEL afile --extensions-dir adir --device mps:x", "'mps:x' is not a torch"),
        ("eval MODEL afile --extensions-dir afile/x", "afile/x: no such folder"),
    ],
    "export": [
        ("export missing.pt -o m.pt", "missing.pt: no such file"),
        ("export afile -o m.pt", "afile: not an exported (TorchScript) model"),
        ("export MODEL -o exists.xyz", "exists.xyz: already exists"),
        ("export MODEL -o m.pt --max-order -1", "--max-order: -1 is not"),
        ("export MODEL -o m.pt --truncate -2", "--truncate: -2 is not"),
        ("export MODEL -o m.pt --max-atoms 1", "--max-atoms: 1 is not"),
        ("export MODEL -o afile/m.pt", "afile is a file, not a folder"),
    ],
    "study": [
        ("study missing.yaml -o s", "missing.yaml: no such file"),
        ("study afile -o s --jobs 0", "--jobs: 0 is not"),
        ("study afile -o afile", "afile: is a file, expected a folder"),
    ],
    "mtt-mbe": [
        ("", "the following arguments are required: command"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("analyze", "the following arguments are required"),
    ],
}

CASES = [
    case if hasattr(case, "marks") else pytest.param(*case, id=case[0] or "no command")
    for cases in BAD.values()
    for case in cases
]


@pytest.mark.parametrize("line, message", CASES)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    workdir, capsys, tiny_models, line, message
):
    if "MODEL" in line:
        line = line.replace("MODEL", str(tiny_models["pet"]))
    argv = line.split()
    before = snapshot(workdir)
    assert main(argv) == 2
    error = capsys.readouterr().err
    command = argv[0] if argv and argv[0] in BAD else "mtt-mbe"
    assert error.count("\n") == 1 and error.startswith("mtt-mbe"), error
    assert command == "mtt-mbe" or error.startswith(f"mtt-mbe {command}: error: "), error
    assert message in error, error
    assert snapshot(workdir) == before


# a good command beside each group: the same inputs, otherwise accepted
GOOD = [
    ("bulk --regime low --atoms 8 -n 2 -o new/b.xyz", "new/b.xyz"),
    ("sample bulk.xyz --protocol pairs --size 4 -n 3 -o s.xyz", "s.xyz"),
    ("subclusters parents.xyz -o s.xyz --orders 2:3 --ids 100:101", "s.xyz"),
    ("fragments water.xyz -o f.xyz", "f.xyz"),
    ("fragments fragmented.xyz -o new/f.xyz --replace", "new/f.xyz"),
    ("analyze subclusters.xyz -o out --max-order 3", "out/report.json"),
    ("bulk --regime high --atoms 8 -n 1 -o exists.xyz --overwrite", "exists.xyz"),
]


@pytest.mark.parametrize("line, written", GOOD, ids=[line for line, _ in GOOD])
def test_good_input_writes_its_output(workdir, capsys, line, written):
    assert main(line.split()) == 0, capsys.readouterr().err
    assert (workdir / written).is_file()
    assert ase.io.read(workdir / written, ":") if written.endswith(".xyz") else True


def test_label_good_input_in_a_fresh_process(workdir):
    done = subprocess.run(
        [sys.executable, "-m", "metatrain_mbe", "label", "h2.xyz", "-o", "l.xyz"]
        + ["--calculator", LJ, "--calc-kwargs", '{"sigma": 0.74}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert ase.io.read("l.xyz").get_potential_energy() != 0


# an output that is an input is refused with or without --overwrite: the same
# path, a symbolic or hard link to it, or an output folder that holds it
KEPT = [
    ("subclusters parents.xyz -o parents.xyz --overwrite", "parents.xyz: is the input parents"),
    ("subclusters parents.xyz -o parents.xyz", "parents.xyz: is the input parents.xyz"),
    ("subclusters parents.xyz -o link.xyz --overwrite", "link.xyz: is the input parents.xyz"),
    ("subclusters parents.xyz -o hard.xyz --overwrite", "hard.xyz: is the input parents.xyz"),
    (f"label h2.xyz -o h2.xyz --overwrite --calculator {LJ}", "h2.xyz: is the input h2.xyz"),
    ("fragments water.xyz -o water.xyz --overwrite", "water.xyz: is the input water.xyz"),
    ("sample bulk.xyz --protocol pairs --size 4 -n 3 -o bulk.xyz --overwrite", "bulk.xyz: is"),
    (
        "analyze inside/subclusters.xyz -o inside --overwrite",
        "inside/subclusters.xyz: lies inside the output folder inside, which",
    ),
    ("analyze subclusters.xyz -o . --overwrite", "subclusters.xyz: lies inside the output"),
    ("export MODEL -o MODEL --overwrite", ": is the input "),
]


@pytest.mark.parametrize("line, message", KEPT, ids=[line for line, _ in KEPT])
def test_an_output_that_is_an_input_is_refused(workdir, capsys, tiny_models, line, message):
    (workdir / "link.xyz").symlink_to("parents.xyz")
    (workdir / "hard.xyz").hardlink_to("parents.xyz")
    (workdir / "inside").mkdir()
    shutil.copy(workdir / "subclusters.xyz", workdir / "inside")
    if "MODEL" in line:
        model = workdir / "model.pt"
        shutil.copy(tiny_models["pet"], model)
        line = line.replace("MODEL", str(model))
    before = snapshot(workdir)
    assert main(line.split()) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert snapshot(workdir) == before


def test_overwrite_replaces_an_old_report_folder_whole(workdir, capsys):
    assert main(["analyze", "subclusters.xyz", "-o", "old", "--overwrite"]) == 0
    new = workdir / "old"
    assert sorted(p.name for p in new.iterdir()) == [
        "figures",
        "reference",
        "report.json",
        "report.md",
    ]
    assert not (new / "figures" / "old.png").exists()
    assert (new / "report.md").read_text() != "old report\n"
    assert not [p.name for p in workdir.iterdir() if p.name.startswith(".")]


def test_failed_overwrite_keeps_the_old_folder(workdir, capsys):
    before = snapshot(workdir)
    assert main(["analyze", "parents.xyz", "-o", "old", "--overwrite"]) == 2
    assert snapshot(workdir) == before


def test_leftovers_of_a_killed_command_are_cleared_by_the_next(workdir, capsys):
    # what atomic_path, staged_directory and --overwrite leave when killed -9
    (workdir / ".tmp-abc-s.xyz").write_text("partial")
    (workdir / ".out.x1y2.tmp" / "reference").mkdir(parents=True)
    (workdir / ".old.4242.replaced").mkdir()  # old/ itself was replaced by then
    assert main(["subclusters", "parents.xyz", "-o", "s.xyz", "--orders", "2"]) == 0
    assert main(["analyze", "subclusters.xyz", "-o", "out"]) == 0
    assert main(["analyze", "subclusters.xyz", "-o", "old", "--overwrite"]) == 0
    assert not [p.name for p in workdir.iterdir() if p.name.startswith(".")]


def test_a_killed_overwrite_gives_the_old_folder_back(workdir, capsys):
    (workdir / "old").rename(workdir / ".old.4242.replaced")  # killed before the new one
    assert main(["analyze", "subclusters.xyz", "-o", "old"]) == 2
    assert "old: already exists" in capsys.readouterr().err
    assert (workdir / "old" / "report.md").read_text() == "old report\n"


def test_kill_9_during_an_overwrite_loses_nothing(workdir, capsys):
    command = [sys.executable, "-m", "metatrain_mbe", "analyze", "subclusters.xyz", "-o", "old"]
    process = subprocess.Popen([*command, "--overwrite"], stderr=subprocess.DEVNULL)
    for _ in range(3000):  # until old/ is set aside (then it imports torch: seconds)
        if list(workdir.glob(".old.*.replaced")):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(workdir.glob(".old.*.replaced")) and not (workdir / "old").exists()
    assert main(command[3:]) == 2  # the old report is back, and not replaced
    assert "old: already exists" in capsys.readouterr().err
    assert (workdir / "old" / "report.md").read_text() == "old report\n"
    assert not [p.name for p in workdir.iterdir() if p.name.startswith(".")]


class Faulty(Calculator):
    """An ase calculator that breaks when built: an unexpected fault."""

    def __init__(self, **kwargs):
        raise RuntimeError("the calculator broke")


def test_unexpected_fault_is_one_line_exit_1_with_a_log(workdir, capsys, log_folder):
    argv = ["label", "h2.xyz", "-o", "l.xyz", "--calculator", f"{__name__}:Faulty"]
    before = snapshot(workdir)
    assert main(argv) == 1
    error = capsys.readouterr().err  # the progress bar, then the error
    assert "Traceback" not in error
    line = error.splitlines()[-1]
    assert line.startswith(
        "mtt-mbe label: error: RuntimeError: the calculator broke (traceback in "
    )
    log = Path(line.split("traceback in ")[1].split(";")[0])
    assert log.parent == log_folder
    assert "mtt-mbe label h2.xyz -o l.xyz" in log.read_text()
    assert "Traceback" in log.read_text() and "the calculator broke" in log.read_text()
    assert snapshot(workdir) == before
    assert main([*argv, "--debug"]) == 1
    error = capsys.readouterr().err
    assert "Traceback" in error and error.endswith("RuntimeError: the calculator broke\n")


def test_a_full_disk_is_one_line_and_leaves_no_partial_file(workdir, log_folder):
    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    done = subprocess.run(
        [sys.executable, "-m", "metatrain_mbe", "bulk", "--regime", "high", "-n", "50"]
        + ["-o", "new/b.xyz"],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "File too large" in done.stderr, done.stderr
    assert not (workdir / "new").exists()
    assert f"traceback in {log_folder}" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["analyze", "missing.xyz", "-o", "x"],
        ["sample", "bulk.xyz", "-n", "0"],
        ["--version"],
    ],
)
def test_help_and_input_errors_do_not_import_torch(tmp_path, argv):
    code = (
        "import sys\nfrom metatrain_mbe.interface.cli import build_parser, main\n"
        f"code = main({argv!r})\nprint('torch' in sys.modules, code, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.stderr.splitlines()[-1] == f"False {0 if '-' in argv[0] else 2}"


def test_every_default_is_in_the_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        assert main([name, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for action in command._actions:
            if action.default not in (None, False, argparse.SUPPRESS) and not action.required:
                assert f"(default: {action.default})" in text, (name, action.dest)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mtt-mbe 0.1.0 (metatrain ")


@pytest.mark.parametrize(
    "argv",
    [["export", "m.pt", "-o", "x.pt"], ["analyze", "m.xyz", "-o", "x"], ["train", "m.xyz"]],
)
def test_extensions_dir_is_an_alias_of_extensions(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile("m.pt", "w") as archive:
        archive.writestr("model/data.pkl", b"")
    Path("m.xyz").write_text("1\n\nH 0 0 0\n")
    Path("ext").mkdir()
    assert build_parser().parse_args([*argv, "--extensions-dir", "ext"]).extensions == "ext"
