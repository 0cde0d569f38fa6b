#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the main job on the shipped hydrogen data:
# the reference many-body expansion of the labelled 8-atom clusters, per
# density regime, written to outputs/main-job/.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/setup.sh | tail -n 1)
export PATH="$PWD/$(dirname "$python"):$PATH"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

mtt-mbe analyze data/hydrogen/subclusters.xyz -o outputs/main-job --group-by regime
