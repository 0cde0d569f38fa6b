#!/usr/bin/env bash
# Make the shipped hydrogen data set with mtt-mbe (see README.md here).
# Resumable: every label is committed to labels.db as it is computed, so a
# killed run started again computes only what is missing. Grow the set by
# raising the counts or the --ids ranges and running again.
#   bash data/hydrogen/make.sh [WORKERS]
set -euo pipefail
cd "$(dirname "$0")"
workers=${1:-2}
export OMP_NUM_THREADS=1
label="mtt-mbe label --workers $workers --grid-level 2 --store labels.db"

# 1. stand-in bulk frames (random packings at the paper's two densities)
mtt-mbe bulk --regime low  -n 20 --atoms 64 --seed 0 -o bulk-low.xyz
mtt-mbe bulk --regime high -n 20 --atoms 64 --seed 1 -o bulk-high.xyz
# 2. 8-atom clusters: "pairs" at low density (keeps H2 whole), "nearest" at high
mtt-mbe sample bulk-low.xyz  --protocol pairs   --size 8 -n 200 --seed 2 -o parents-low.xyz
mtt-mbe sample bulk-high.xyz --protocol nearest --size 8 -n 200 --seed 3 --first-id 200 \
    -o parents-high.xyz
python - <<'PY'
from metatrain_mbe.data import read_structures, write_structures
write_structures("to-label.xyz", read_structures("parents-low.xyz") + read_structures("parents-high.xyz"))
PY
# 3. label the parents (UKS-PBE, cc-pVDZ, 0.025 eV Gaussian smearing)
$label to-label.xyz -o parents.xyz
# 4. complete sub-cluster sets (m = 2..7) of 12 parents per regime, with the
#    parents themselves and the isolated H atom: a complete analysis input.
#    --retry-failed: structures that failed before get the current strategies.
mtt-mbe subclusters parents.xyz --ids 0:11,200:211 --orders 2:7 --with-parents -o to-label.xyz
$label to-label.xyz -o subclusters.xyz --retry-failed
rm -f to-label.xyz parents-low.xyz parents-high.xyz bulk-low.xyz bulk-high.xyz
