"""``kill -9`` of ``mtt-mbe label`` and ``mtt-mbe study``: no child outlives the
killed command, the next run resumes and loses nothing; and one study at a time
works on a folder."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ase
import ase.io
import pytest
from ase.calculators.emt import EMT

from metatrain_mbe.interface.cli import main

from .conftest import train_options, write_yaml

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

ROOT = Path(__file__).parents[2]


class SlowEMT(EMT):
    """ase's EMT, 0.3 s per structure: slow enough to be killed half-way."""

    def calculate(self, *args, **kwargs):
        time.sleep(0.3)
        super().calculate(*args, **kwargs)


def _state(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _running(pid: int) -> bool:
    state = _state(pid)
    return state is not None and state[0] not in "ZX"


def _descendants(pid: int) -> set[int]:
    """The running processes below ``pid``."""
    parents = {}
    for entry in Path("/proc").iterdir():
        state = _state(int(entry.name)) if entry.name.isdigit() else None
        if state is not None and state[0] not in "ZX":
            parents[int(entry.name)] = state[1]
    found, new = set(), {pid}
    while new:
        new = {child for child, parent in parents.items() if parent in new} - found
        found |= new
    return found


def _command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _start(arguments: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """``python -m metatrain_mbe ARGUMENTS`` in a session of its own, output to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(log, "w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "metatrain_mbe", *arguments],
            cwd=cwd,
            env=env,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_for(process: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, f"ended before {what}"
        assert time.time() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.05)


def _kill_parent_only(process: subprocess.Popen) -> set[int]:
    """``kill -9`` the command (not its children); returns the children that
    still run 10 s later, after killing them (so a failure leaves none)."""
    children = _descendants(process.pid)
    assert children
    os.kill(process.pid, signal.SIGKILL)
    process.wait()  # reaped: its pid is gone, as after a shell's kill -9
    deadline = time.time() + 10
    while any(_running(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    survivors = {pid for pid in children if _running(pid)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    return survivors


def _rows(path: Path) -> dict[str, tuple]:
    """Every committed row of a label store: unique id -> (creation time, energy)."""
    with sqlite3.connect(path) as db:
        return {u: (t, e) for u, t, e in db.execute("select unique_id, ctime, energy from systems")}


def test_kill_9_of_label_stops_its_workers_and_the_rerun_reuses_every_committed_row(tmp_path):
    frames = [ase.Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.2 + 0.02 * k]]) for k in range(30)]
    ase.io.write(tmp_path / "in.xyz", frames, format="extxyz")
    store = tmp_path / "out.xyz.db"
    arguments = ["label", "in.xyz", "-o", "out.xyz", "--calculator", f"{__name__}:SlowEMT"]
    arguments += ["--workers", "2"]
    process = _start(arguments, tmp_path, tmp_path / "killed.log")

    def committed() -> bool:
        try:
            rows = _rows(store) if store.exists() else {}
        except sqlite3.OperationalError:  # no table yet, or being written
            return False
        return len(rows) >= 4 and len(_descendants(process.pid)) >= 2

    _wait_for(process, committed, "4 committed structures and 2 workers")
    assert _kill_parent_only(process) == set()
    before = _rows(store)
    assert 4 <= len(before) < 30, "killed half-way"
    assert (tmp_path / "out.xyz.db.running").exists() and not (tmp_path / "out.xyz").exists()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "metatrain_mbe", *arguments],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout
    assert done.returncode == 0, done.stderr
    assert f"30 structures, 30 distinct, {30 - len(before)} to compute" in output
    after = _rows(store)
    assert len(after) == 30 and {u: after[u] for u in before} == before
    labelled = ase.io.read(tmp_path / "out.xyz", ":")
    for atoms, frame in zip(labelled, frames, strict=True):
        frame.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(frame.get_potential_energy())
    assert not (tmp_path / "out.xyz.db.running").exists()


def _one_architecture_study(path: Path, proportions: list[float]) -> str:
    options = train_options("soap_bpnn")
    write_yaml(path / "soap_bpnn.yaml", options)
    study = {
        "architectures": {"soap_bpnn": "soap_bpnn.yaml"},
        "proportions": proportions,
        "seeds": [0],
        "validation_set": 0.2,
        "test_set": 0.2,
    }
    return write_yaml(path / "study.yaml", study)


@pytest.mark.slow
def test_kill_9_of_study_stops_its_trainings_and_the_rerun_trains_only_those(hydrogen_files):
    study = _one_architecture_study(hydrogen_files, [0.0])
    assert main(["study", study, "-o", "st"]) == 0
    finished = hydrogen_files / "st" / "runs" / "soap_bpnn" / "p0-d1-s0" / "run.json"
    stamp = finished.stat().st_mtime_ns

    _one_architecture_study(hydrogen_files, [0.0, 0.5, 1.0])
    arguments = ["study", study, "-o", "st", "--jobs", "2"]
    process = _start(arguments, hydrogen_files, hydrogen_files / "killed.log")

    def training() -> bool:
        children = _descendants(process.pid)
        return sum(" train options.yaml" in _command(pid) for pid in children) == 2

    _wait_for(process, training, "2 trainings")
    assert _kill_parent_only(process) == set()
    assert (hydrogen_files / "st.running").exists()  # a dead process's: taken over

    assert main(arguments) == 0
    assert finished.stat().st_mtime_ns == stamp
    runs = json.loads((hydrogen_files / "st" / "study.json").read_text())["runs"]
    assert [r["name"] for r in runs if "error" not in r] == [
        f"soap_bpnn/p{p:g}-d1-s0" for p in (0.0, 0.5, 1.0)
    ]
    assert (hydrogen_files / "st" / "report.md").exists()
    assert not (hydrogen_files / "st.running").exists()
    assert not [p for p in (hydrogen_files / "st").rglob("*") if p.name.startswith(".")]


def _dead_pid() -> int:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(gone.stdout)


def test_a_second_study_on_a_folder_in_use_is_refused_in_one_line(hydrogen_files, capsys):
    study = _one_architecture_study(hydrogen_files, [0.0])
    lock = hydrogen_files / "st.running"
    owner = f"{os.getpid()} {socket.gethostname()}"
    lock.write_text(owner)
    assert main(["study", study, "-o", "st"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith(f"mtt-mbe study: error: {hydrogen_files / 'st'}: in use by another")
    assert owner in error and str(lock) in error
    assert lock.read_text() == owner
    assert sorted(p.name for p in hydrogen_files.iterdir()) == [
        "parents.xyz",
        "soap_bpnn.yaml",
        "st.running",
        "study.yaml",
        "subclusters.xyz",
    ]


def test_the_lock_of_a_killed_study_is_taken_over(hydrogen_files, capsys):
    study = _one_architecture_study(hydrogen_files, [0.0])
    lock = hydrogen_files / "st.running"
    lock.write_text(f"{_dead_pid()} {socket.gethostname()}")
    typo = train_options("soap_bpnn")
    typo["mbe"]["proportoin"] = 0.5
    write_yaml(hydrogen_files / "soap_bpnn.yaml", typo)
    # past the lock: the study's own checks run (and refuse the typo), the lock is released
    assert main(["study", study, "-o", "st"]) == 2
    assert "soap_bpnn.yaml: mbe.proportoin: unknown key" in capsys.readouterr().err
    assert not lock.exists() and not (hydrogen_files / "st").exists()


def test_worker_processes_die_with_the_process_that_started_them():
    script = (
        "import sys, time\n"
        "from metatrain_mbe.compute.tasks import map_tasks\n"
        "for _ in map_tasks(time.sleep, [60] * 2, workers=2, progress=False): pass\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    _wait_for(process, lambda: len(_descendants(process.pid)) == 2, "2 workers", 60)
    assert _kill_parent_only(process) == set()
