#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint with ruff and run the test suite.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k expansion`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/setup.sh | tail -n 1)
bin=$(dirname "$python")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PATH="$PWD/$bin:$PATH"
"$python" -m ruff check src tests benchmarks
"$python" -m pytest "$@"
