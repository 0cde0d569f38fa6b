"""scripts/setup.sh, run on a copy of itself in a temporary folder with fake
interpreters that record how they were called: inside a conda (or virtual)
environment it installs there, with that environment's own python, and never
installs torch over an importable one; outside any it creates ./.venv. Nothing
is downloaded or installed: every python the script may reach is a fake,
except in the last test, where the check ``import torch`` runs in the real
interpreter of the tests (and pip is still a fake)."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SETUP = Path(__file__).parents[1] / "scripts" / "setup.sh"

#: a fake python: records its arguments; `-c CODE` succeeds when the code
#: does not import torch or FAKE_TORCH is 1 (with REAL_PYTHON set it runs the
#: code there instead); `-m venv DIR` makes DIR/bin/python a copy of itself;
#: `-m pip ...` does nothing
FAKE_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "$0 $*" >> "$SETUP_LOG"
if [ "$1" = -c ]; then
    if [ -n "${REAL_PYTHON:-}" ]; then exec "$REAL_PYTHON" "$@"; fi
    case "$2" in *torch*) [ "${FAKE_TORCH:-0}" = 1 ]; exit ;; esac
    exit 0
fi
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
exit 0
"""

#: any other python or pip on PATH: recorded as a call that must not happen
STRAY = """#!/usr/bin/env bash
printf 'STRAY %s\\n' "$0 $*" >> "$SETUP_LOG"
exit 99
"""


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the repository's script in ``tmp_path/repo`` (it works in the
    folder above its own), stray interpreters on PATH, and a function that
    runs it: ``run(prefix_bin=None, **env) -> (completed process, calls)``."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SETUP, repo / "scripts" / "setup.sh")
    stray = tmp_path / "stray"
    for name in ("python", "python3", "pip", "pip3"):
        executable(stray / name, STRAY)
    log = tmp_path / "calls.log"

    def run(prefix_bin: Path | None = None, **env: str):
        # the environment a fresh shell would have, plus `env`: no active
        # environment unless the test activates one
        base = {
            key: value
            for key, value in os.environ.items()
            if key not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON", "PYTHONPATH", "PYTHONHOME")
        }
        path = f"{stray}:/usr/bin:/bin"
        if prefix_bin is not None:  # what `conda activate` / `source bin/activate` do
            path = f"{prefix_bin}:{path}"
        done = subprocess.run(
            ["bash", str(repo / "scripts" / "setup.sh")],
            env={**base, "PATH": path, "SETUP_LOG": str(log), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return done, calls

    run.repo = repo
    return run


def conda_env(tmp_path: Path) -> Path:
    """A fake conda environment: its prefix, with bin/python a fake python."""
    prefix = tmp_path / "conda" / "envs" / "mbe"
    executable(prefix / "bin" / "python", FAKE_PYTHON)
    return prefix


def test_in_conda_an_importable_torch_is_kept(sandbox, tmp_path):
    prefix = conda_env(tmp_path)
    done, calls = sandbox(prefix / "bin", CONDA_PREFIX=str(prefix), FAKE_TORCH="1")
    assert done.returncode == 0, done.stderr
    python = str(prefix / "bin" / "python")
    assert calls == [
        f"{python} -c import torch",
        f"{python} -m pip install --quiet -e .[test,lint]",
    ]
    assert not (sandbox.repo / ".venv").exists()  # the conda environment is used


def test_in_conda_without_torch_the_pinned_torch_is_installed_there(sandbox, tmp_path):
    prefix = conda_env(tmp_path)
    done, calls = sandbox(prefix / "bin", CONDA_PREFIX=str(prefix), FAKE_TORCH="0")
    assert done.returncode == 0, done.stderr
    python = str(prefix / "bin" / "python")
    assert calls == [
        f"{python} -c import torch",
        f"{python} -m pip install --quiet torch==2.13.0",
        f"{python} -m pip install --quiet -e .[test,lint]",
    ]
    assert not (sandbox.repo / ".venv").exists()


def test_in_a_virtual_environment_an_importable_torch_is_kept(sandbox, tmp_path):
    venv = tmp_path / "venv"
    python = executable(venv / "bin" / "python", FAKE_PYTHON)
    done, calls = sandbox(venv / "bin", VIRTUAL_ENV=str(venv), FAKE_TORCH="1")
    assert done.returncode == 0, done.stderr
    assert calls == [
        f"{python} -c import torch",
        f"{python} -m pip install --quiet -e .[test,lint]",
    ]
    assert not (sandbox.repo / ".venv").exists()


def test_outside_any_environment_dot_venv_is_created_and_used(sandbox, tmp_path):
    base = executable(tmp_path / "base" / "python3", FAKE_PYTHON)
    done, calls = sandbox(PYTHON=str(base), FAKE_TORCH="0")
    assert done.returncode == 0, done.stderr
    assert calls == [
        f"{base} -m venv .venv",
        ".venv/bin/python -c import torch",
        ".venv/bin/python -m pip install --quiet torch==2.13.0",
        ".venv/bin/python -m pip install --quiet -e .[test,lint]",
    ]
    assert done.stdout.splitlines()[-1] == ".venv/bin/python"
    # a second run reuses the environment, whose torch is now importable
    done, calls = sandbox(PYTHON=str(base), FAKE_TORCH="1")
    assert done.returncode == 0, done.stderr
    assert calls == [
        ".venv/bin/python -c import torch",
        ".venv/bin/python -m pip install --quiet -e .[test,lint]",
    ]


@pytest.mark.parametrize("torch_there", [True, False], ids=["torch", "no-torch"])
def test_in_conda_the_check_imports_torch_for_real(sandbox, tmp_path, torch_there):
    # the check runs in the tests' own interpreter, where torch is installed;
    # a package named torch that fails to import stands for an environment without it
    prefix = conda_env(tmp_path)
    env = {"CONDA_PREFIX": str(prefix), "REAL_PYTHON": sys.executable}
    if not torch_there:
        executable(tmp_path / "shadow" / "torch" / "__init__.py", "raise ImportError('none')\n")
        env["PYTHONPATH"] = str(tmp_path / "shadow")
    done, calls = sandbox(prefix / "bin", **env)
    assert done.returncode == 0, done.stderr
    installs_torch = any("install --quiet torch" in call for call in calls)
    assert installs_torch is not torch_there
    assert all(call.startswith(str(prefix / "bin" / "python")) for call in calls)
