#!/usr/bin/env bash
# The paper's appendix-B test: complete sub-cluster sets of the bonded and the
# fragmented H8 antiprism (geometry.py), labelled with FCI/STO-6G and with
# restricted PBE/cc-pVDZ; their reference MBE and the Fig. 7 layout (README.md).
#   bash data/appendix-b/make.sh [WORKERS]
# Resumable: labels are committed to local stores as they come (work/*.db).
set -euo pipefail
cd "$(dirname "$0")"
workers=${1:-1}
export OMP_NUM_THREADS=1
mkdir -p work
python geometry.py work/parents.xyz
mtt-mbe subclusters work/parents.xyz --with-parents -o work/to-label.xyz --overwrite
mtt-mbe label work/to-label.xyz -o fci.xyz.gz --method fci --basis sto-6g \
    --workers "$workers" --store work/fci.db --overwrite
mtt-mbe analyze fci.xyz.gz -o work/fci --group-by geometry --overwrite
mtt-mbe label work/to-label.xyz -o pbe.xyz.gz --spin restricted --basis cc-pvdz \
    --grid-level 3 --workers "$workers" --store work/pbe.db --overwrite
mtt-mbe analyze pbe.xyz.gz -o work/pbe --group-by geometry --overwrite
python figure.py fig7.png
