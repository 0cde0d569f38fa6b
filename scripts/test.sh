#!/usr/bin/env bash
# Set up (scripts/setup.sh), then lint and check formatting with ruff, type-check
# the package with mypy, run the test suite (slow tests included) and build the
# documentation with its gallery of executed examples (warnings are errors).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k expansion`; the quick
# developer loop is `pytest -m "not slow"`. The tests run in TEST_WORKERS
# processes (pytest-xdist; default 2, one per core of a small machine, each
# with OMP_NUM_THREADS threads; TEST_WORKERS=0 runs them in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/setup.sh | tail -n 1)
bin=$(dirname "$python")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PATH="$PWD/$bin:$PATH"
"$python" -m ruff check src tests benchmarks examples docs/conf.py
"$python" -m ruff format --check src tests benchmarks examples docs/conf.py
"$python" -m mypy
"$python" -m pytest -n "${TEST_WORKERS:-2}" "$@"
# The documentation (docs/conf.py), warnings as errors: the Markdown pages, the API
# reference from the docstrings and the gallery, whose examples (examples/) run
# on the shipped data, about 2 minutes on one core; the site is docs/_build/html.
"$python" -m sphinx -W --keep-going -E -q -b html docs docs/_build/html
