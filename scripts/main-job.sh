#!/usr/bin/env bash
# Set up (scripts/setup.sh), then run the main job on the shipped hydrogen data
# (data/hydrogen/), writing to outputs/main-job/ (or the directory given):
#   1. the reference (DFT) many-body expansion of the labelled 8-atom clusters,
#      per density regime: reference/mbe_energy.mts, mbe_summary.mts, report.json;
#   2. PET trained with sub-cluster augmentation (options/pet.yaml: half of the
#      labelled sub-cluster sets of the training parents injected, split per
#      parent), then its MBE report on the test parents against the reference:
#      pet/model.pt, pet/model_data/, pet/model_options.yaml, pet/model_mbe/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(bash scripts/setup.sh | tail -n 1)
export PATH="$PWD/$(dirname "$python"):$PATH"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
out=${1:-outputs/main-job}

mtt-mbe analyze data/hydrogen/subclusters.xyz -o "$out" --group-by regime
mtt-mbe train options/pet.yaml -o "$out/pet/model.pt"
echo "main job done: reference MBE in $out/report.json, model MBE in $out/pet/model_mbe/report.md"
