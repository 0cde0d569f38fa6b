#!/usr/bin/env bash
# Install metatrain-mbe with its optional and test dependencies.
#
# Inside an active virtual or conda environment, installs there and leaves an
# existing torch alone (keep your CUDA build). Otherwise creates ./.venv.
# Installs torch==2.13.0 first when no torch is importable, so that the
# dependencies do not pull a different (multi-GB CUDA) build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
    python=python
else
    if [ ! -x .venv/bin/python ]; then
        "${PYTHON:-python3}" -m venv .venv
    fi
    python=.venv/bin/python
fi

if ! "$python" -c "import torch" 2>/dev/null; then
    "$python" -m pip install --quiet torch==2.13.0
fi
"$python" -m pip install --quiet -e ".[test,lint]"
echo "$python"
