"""A full disk while a model is written: one line on stderr, exit code 1, and
nothing left behind (torch's own file writer aborts the process in C++).

The disk is made small with a file-size limit (``RLIMIT_FSIZE``), SIGXFSZ
ignored so that a write fails with EFBIG as it fails with ENOSPC on a full disk.
"""

import os
import resource
import signal
import subprocess
import sys

import pytest
import torch

from ..models import export_pair_potential, tiny_model

#: bytes a process may write to one file: more than a traceback log, less than
#: the exported models
LIMIT = 20_000


def run_on_a_small_disk(arguments, tmp_path, limit=LIMIT):
    """``python ARGUMENTS`` writing at most ``limit`` bytes to a file, its log
    files in ``tmp_path/logs``."""

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    (tmp_path / "logs").mkdir()
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp_path / "logs"), "OMP_NUM_THREADS": "1"},
    )


def assert_one_line(done, start):
    assert done.returncode == 1, done.stderr
    assert "terminate called" not in done.stderr and "ZipWriter" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith(start), done.stderr


@pytest.mark.parametrize("name", ["pair", pytest.param("soap_bpnn", marks=pytest.mark.slow)])
def test_a_full_disk_during_export_is_one_line_and_leaves_nothing(tmp_path, tiny_models, name):
    # the pair potential fails on the model file, SOAP-BPNN on its extensions first
    model = export_pair_potential(tmp_path) if name == "pair" else tiny_models[name]
    out = tmp_path / "out"
    out.mkdir()  # not created by the command: what is left in it stays
    command = ["-m", "metatrain_mbe", "export", str(model), "-o", str(out / "m.pt")]
    extensions = model.parent / "extensions"
    if extensions.is_dir():  # the pair potential has none
        command += ["-e", str(extensions)]
    done = run_on_a_small_disk(command, tmp_path)
    assert_one_line(
        done,
        f"mtt-mbe export: error: {out / 'm.pt'}: file too large (writing the exported model) "
        f"(traceback in {tmp_path / 'logs'}",
    )
    assert list(out.iterdir()) == []


# the tiny PET's checkpoint is 129 kB, its exported model 403 kB: the first limit
# fails on the checkpoint (torch.save), the second on the model (metatomic's save)
@pytest.mark.parametrize("limit", [LIMIT, 200_000])
def test_a_full_disk_during_the_e1_calibration_leaves_the_model_as_it_was(tmp_path, limit):
    model = tiny_model("pet", (1,), seed=3).eval()
    torch.save(model.get_checkpoint(), tmp_path / "model.ckpt")
    model.export().save(str(tmp_path / "model.pt"), collect_extensions=str(tmp_path / "ext"))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    code = (
        "from pathlib import Path\n"
        "from metatrain_mbe.compute.architectures import ARCHITECTURES\n"
        "from metatrain_mbe.compute.e1_calibration import calibrate_e1\n"
        "try:\n"
        "    calibrate_e1(Path('model.pt'), Path('ext'), Path('e1.json'), {'H': -13.6},\n"
        "                 ARCHITECTURES['pet'])\n"
        "except OSError as error:\n"
        "    raise SystemExit(f'{error.filename}: {error.strerror}')\n"
    )
    done = run_on_a_small_disk(["-c", code], tmp_path, limit)
    assert_one_line(
        done, "model.pt: file too large (writing the calibrated model and its checkpoint)"
    )
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    assert after == before


def test_a_full_disk_during_analyze_is_one_line_without_metatensor_s_fragment(tmp_path):
    import ase.io

    from metatrain_mbe.data import enumerate_subclusters, isolated_atoms

    from ..conftest import hydrogen_cluster
    from ..interface.conftest import lj_hydrogen_label

    parents = [hydrogen_cluster(6, seed=k) for k in range(6)]
    for k, parent in enumerate(parents):
        parent.info["mbe_parent"] = k
    frames = isolated_atoms(parents) + parents + enumerate_subclusters(parents)
    ase.io.write(tmp_path / "labelled.xyz", lj_hydrogen_label(frames))
    done = run_on_a_small_disk(
        ["-m", "metatrain_mbe", "analyze", "labelled.xyz", "-o", "out"], tmp_path, limit=4_000
    )
    assert_one_line(done, "mtt-mbe analyze: error: ")
    assert "mbe_energy.mts: file too large (writing the expansion's terms)" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.xyz", "logs"]
