#!/usr/bin/env bash
# Make (or grow) the shipped water-cluster data set with mtt-mbe (see README.md here).
#   bash data/water/make.sh [WORKERS]     # everything still missing
#   bash data/water/make.sh status        # what is done so far
# Resumable at two levels: every label is committed to labels.db (a local
# store, not in git) as it is computed, and parents and complete sub-cluster
# sets are added to parents.xyz.gz and subclusters.xyz.gz batch by batch
# (rewritten atomically: commit them at any time while the rest runs).
# Batches already in those files are skipped, so a fresh clone resumes
# without the store. Grow the set by raising N_PARENTS or N_SETS.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == status ]]; then exec python sets.py status; fi
workers=${1:-1}
export OMP_NUM_THREADS=1
# the level of theory: UKS (closed shell, 2S = 0: the same as RKS) PBE/6-31G*,
# no smearing, PySCF DFT grid level 1; recorded in every frame as info["level"]
xc=pbe basis='6-31g*' grid=1
export LEVEL="PySCF UKS $xc/$basis, 2S=0, no smearing, grid level $grid"
label=(mtt-mbe label --workers "$workers" --xc "$xc" --basis "$basis" --grid-level "$grid"
       --smearing 0 --store labels.db)
N_PARENTS=100   # parents per size: ids 0.. (H2O)4, 100.. (H2O)5, 200.. (H2O)6
N_SETS=8        # complete sets per size: parents 0.., 100.., 200..
mkdir -p work

# 0. geometries: 100 clusters per size from flexible TIP3P molecular dynamics
#    (generate.py; fixed seeds, so the same file every time)
[[ -e work/generated.xyz ]] || python generate.py work/generated.xyz --per-size 100 --seed 0

parents() {  # K: label parents 10K..10K+9 of each size, add them
    local k=$1 ids
    ids="$((10 * k)):$((10 * k + 9)),$((100 + 10 * k)):$((109 + 10 * k)),"
    ids+="$((200 + 10 * k)):$((209 + 10 * k))"
    if python sets.py parents-done parents.xyz.gz "$ids"; then return; fi
    local start=$SECONDS
    python sets.py pick work/generated.xyz "$ids" work/parents-to-label.xyz
    "${label[@]}" work/parents-to-label.xyz -o work/parents-labelled.xyz --overwrite
    python sets.py add-parents work/parents-labelled.xyz parents.xyz.gz
    echo "parents $ids: $((SECONDS - start)) s ($(date -u +%FT%TZ))"
}

batch() {  # IDS: label the complete sets of these parents, add them
    local ids=$1 name=work/sets-${1//[,:]/-}
    if python sets.py done subclusters.xyz.gz "$ids"; then return; fi
    local start=$SECONDS
    # every union of 1 .. K-1 whole waters, and the parent
    mtt-mbe subclusters parents.xyz.gz --ids "$ids" --with-parents -o "$name-to-label.xyz" \
        --overwrite
    python sets.py check-set "$name-to-label.xyz"
    "${label[@]}" "$name-to-label.xyz" -o "$name.xyz" --overwrite
    python sets.py merge "$name.xyz" subclusters.xyz.gz
    rm -f "$name-to-label.xyz"
    echo "batch $ids: $((SECONDS - start)) s ($(date -u +%FT%TZ))"
}

# 1. parents 10 per size at a time, each followed by one set per size, so that
#    what is committed grows evenly
for ((k = 0; k < N_PARENTS / 10; k++)); do
    parents "$k"
    if ((k < N_SETS)); then batch "$k,$((100 + k)),$((200 + k))"; fi
done
for ((k = N_PARENTS / 10; k < N_SETS; k++)); do
    batch "$k,$((100 + k)),$((200 + k))"
done
python sets.py status
# 3. the README's reference MBE table, from every complete set
mtt-mbe analyze subclusters.xyz.gz -o work/reference --group-by n_water --overwrite > /dev/null
python sets.py table work/reference/report.json
