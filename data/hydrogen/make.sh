#!/usr/bin/env bash
# Make (or grow) the shipped hydrogen data set with mtt-mbe (see README.md here).
#   bash data/hydrogen/make.sh [WORKERS]     # everything still missing
#   bash data/hydrogen/make.sh status        # what is done so far
#   bash data/hydrogen/make.sh relabel       # relabel the store's fallback labels
#                                            # with the current strategies (below)
#   bash data/hydrogen/make.sh restricted [WORKERS]
#                                            # relabel the parents, then the complete
#                                            # sets, with --spin restricted into
#                                            # restricted/, and label the
#                                            # intermediate-density parents (below)
# Resumable at two levels: every label is committed to labels.db (a local
# store, not in git) as it is computed, and every complete sub-cluster set is
# added to subclusters.xyz.gz as soon as its batch is labelled (rewritten
# atomically: commit it at any time while the rest runs). Batches already in
# subclusters.xyz.gz are skipped, so a fresh clone resumes without the store.
# Grow the set by raising N_PARENTS_NEW or N_SETS and running again.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == status ]]; then exec python sets.py status; fi
workers=${1:-1}
export OMP_NUM_THREADS=1
# the shipped labels: UKS with one Fermi level (--spin unrestricted, see README.md)
label="mtt-mbe label --workers $workers --grid-level 2 --spin unrestricted --store labels.db"
sets_file=subclusters.xyz.gz
N_PARENTS_NEW=300   # new parents per regime (ids 400.. low, 700.. high)
N_SETS=50           # complete sets per regime (ids 0.. low, 200.. high)
mkdir -p work

# relabel: every label of the shipped files made by a fallback strategy (the
# store records each one's strategy) is computed again with the current
# strategies, and the shipped files are rewritten from the store. Done once
# for the first 26 sets (README.md); the list is kept in work/fallbacks-old.txt
# with the old labels in work/fallbacks-old.xyz; a killed run resumes.
if [[ "${1:-}" == relabel ]]; then
    label="mtt-mbe label --workers 1 --grid-level 2 --spin unrestricted --store labels.db"
    [[ -e labels.db ]] || { echo "relabel: needs the store labels.db" >&2; exit 1; }
    shipped=(subclusters.xyz.gz parents.xyz.gz)
    if [[ ! -e work/fallbacks-old.xyz ]]; then
        python sets.py fallbacks work/fallbacks-list.xyz "${shipped[@]}" | tee work/fallbacks-old.txt
        python sets.py forget work/fallbacks-list.xyz
        mv work/fallbacks-list.xyz work/fallbacks-old.xyz
    fi
    $label work/fallbacks-old.xyz -o work/fallbacks-new.xyz
    python sets.py compare work/fallbacks-old.xyz | tee work/fallbacks-compare.txt
    for file in "${shipped[@]}"; do  # every label from the store (nothing to compute)
        if [[ -e $file ]]; then
            $label "$file" -o work/refresh.xyz
            python sets.py concat "$file" work/refresh.xyz
        fi
    done
    rm -f work/refresh.xyz
    exit 0
fi

# 1. parents: the first 400 (ids 0-199 low, 200-399 high, from the stand-in
#    bulk frames of seeds 0-19 and 1-20: frame k of `bulk --seed S` has seed
#    S + k), then 2 x N_PARENTS_NEW from 40 new frames per regime (seeds
#    1000-1039 and 2000-2039: no frame shared, so no cluster repeated).
want=$((400 + 2 * N_PARENTS_NEW))
have=$(python -c "import ase.io,os;print(len(ase.io.read('parents.xyz.gz',':')) if os.path.exists('parents.xyz.gz') else 0)")
if (( have < want )); then
    mtt-mbe bulk --regime low  -n 20 --atoms 64 --seed 0 -o work/bulk-low.xyz
    mtt-mbe bulk --regime high -n 20 --atoms 64 --seed 1 -o work/bulk-high.xyz
    # "pairs" at low density (keeps H2 whole), "nearest" at high
    mtt-mbe sample work/bulk-low.xyz  --protocol pairs   --size 8 -n 200 --seed 2 \
        -o work/parents-low.xyz
    mtt-mbe sample work/bulk-high.xyz --protocol nearest --size 8 -n 200 --seed 3 \
        --first-id 200 -o work/parents-high.xyz
    mtt-mbe bulk --regime low  -n 40 --atoms 64 --seed 1000 -o work/bulk-low-2.xyz
    mtt-mbe bulk --regime high -n 40 --atoms 64 --seed 2000 -o work/bulk-high-2.xyz
    mtt-mbe sample work/bulk-low-2.xyz  --protocol pairs   --size 8 -n "$N_PARENTS_NEW" \
        --seed 12 --first-id 400 -o work/parents-low-2.xyz
    mtt-mbe sample work/bulk-high-2.xyz --protocol nearest --size 8 -n "$N_PARENTS_NEW" \
        --seed 13 --first-id $((400 + N_PARENTS_NEW)) -o work/parents-high-2.xyz
    python sets.py concat work/to-label.xyz work/parents-low.xyz work/parents-high.xyz \
        work/parents-low-2.xyz work/parents-high-2.xyz
    # UKS-PBE, cc-pVDZ, 0.025 eV Gaussian smearing, grid level 2
    $label work/to-label.xyz -o work/parents.xyz --retry-failed || (($? == 3))  # 3: some failed
    python sets.py concat parents.xyz.gz work/parents.xyz
fi

# 2. complete sub-cluster sets (m = 2..7, with the parent and the isolated H
#    atom), in batches of one low- and one high-density parent so that what
#    is committed stays balanced between regimes.
#    --retry-failed: structures that failed before get the current strategies.
batch() {  # IDS: label the sets of these parents, add the complete ones
    local ids=$1 name=work/sets-${1//[,:]/-}
    if python sets.py done "$sets_file" "$ids"; then return; fi
    local start=$SECONDS
    # --overwrite: a killed run's scratch files are made again (labels come from the store)
    mtt-mbe subclusters parents.xyz.gz --ids "$ids" --orders 2:7 --with-parents \
        -o "$name-to-label.xyz" --overwrite
    $label "$name-to-label.xyz" -o "$name.xyz" --retry-failed --overwrite || (($? == 3))
    python sets.py merge "$name.xyz" "$sets_file"
    rm -f "$name-to-label.xyz"
    echo "batch $ids: $((SECONDS - start)) s ($(date -u +%FT%TZ))"
}

# restricted: the shipped data relabelled with --spin restricted (one spin
# branch for every structure, as the paper's FHI-aims runs) into restricted/:
# first the 1 000 parents (restricted/parents.xyz.gz, grown in chunks of 100),
# then the intermediate-density parents (below), then the complete sets, one
# low- and one high-density parent per batch in the order of the shipped sets,
# each committed to restricted/subclusters.xyz.gz as soon as it is labelled.
# Resumable like the rest (store labels-restricted.db; finished chunks and
# sets are skipped).
#
# Intermediate densities: 100 parents at each of the paper's five
# out-of-distribution densities (ids 1000.., 1100.., ..; info density and
# regime=intermediate), from 20 new stand-in frames per density. Below
# 0.95 g/cm³ (0.720, 0.876) the frames pack H2 molecules and clusters keep them
# whole (--regime low, pairs protocol); from 0.999 on, atoms (--regime high,
# nearest protocol): the midpoint of the two regimes (0.90 g/cm³) is where the
# stand-in switches from the molecular to the atomic packing; info packing
# says which.
INTERMEDIATE=(0.720 0.876 0.999 1.14 1.25)
if [[ "${1:-}" == restricted ]]; then
    workers=${2:-1}
    label="mtt-mbe label --workers $workers --grid-level 2 --spin restricted --store labels-restricted.db"
    sets_file=restricted/subclusters.xyz.gz
    mkdir -p restricted
    for ((start = 0; start < 1000; start += 100)); do
        chunk=work/restricted-parents-$start
        if [[ -e $chunk.xyz ]]; then continue; fi
        python sets.py pick parents.xyz.gz "$chunk-to-label.xyz" "$start:$((start + 99))"
        $label "$chunk-to-label.xyz" -o "$chunk.xyz" --retry-failed --overwrite || (($? == 3))
        python sets.py concat restricted/parents.xyz.gz work/restricted-parents-*[0-9].xyz
    done
    for k in "${!INTERMEDIATE[@]}"; do
        rho=${INTERMEDIATE[$k]} chunk=work/intermediate-$k first=$((1000 + 100 * k))
        if [[ -e $chunk.xyz ]]; then continue; fi
        if awk "BEGIN {exit !($rho < 0.95)}"; then
            regime=low protocol=pairs packing=molecular
        else
            regime=high protocol=nearest packing=atomic
        fi
        mtt-mbe bulk --regime $regime --density "$rho" -n 20 --atoms 64 \
            --seed $((3000 + 100 * k)) -o "$chunk-bulk.xyz" --overwrite
        mtt-mbe sample "$chunk-bulk.xyz" --protocol $protocol --size 8 -n 100 \
            --seed $((30 + k)) --first-id $first -o "$chunk-sampled.xyz" --overwrite
        python sets.py stamp "$chunk-sampled.xyz" regime=intermediate packing=$packing
        $label "$chunk-sampled.xyz" -o "$chunk.xyz" --retry-failed --overwrite || (($? == 3))
        python sets.py concat restricted/intermediate.xyz.gz work/intermediate-*[0-9].xyz
    done
    for ((i = 0; i < N_SETS; i++)); do
        batch "$i,$((200 + i))"
    done
    python sets.py spin restricted/subclusters.xyz.gz subclusters.xyz.gz
    exit 0
fi

batch 0:11,200:211   # the first 24 sets
for ((i = 12; i < N_SETS; i++)); do
    batch "$i,$((200 + i))"
done
python sets.py status
# 3. the README's reference MBE table, from every complete set
mtt-mbe analyze subclusters.xyz.gz -o work/reference --group-by regime > /dev/null
python sets.py table work/reference/report.json
