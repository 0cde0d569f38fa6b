#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint and check formatting with ruff, type-check
# the package with mypy and run the test suite (slow tests included).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k expansion`; the quick
# developer loop is `pytest -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/setup.sh | tail -n 1)
bin=$(dirname "$python")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PATH="$PWD/$bin:$PATH"
"$python" -m ruff check src tests benchmarks
"$python" -m ruff format --check src tests benchmarks
"$python" -m mypy
"$python" -m pytest "$@"
