"""Helpers of make.sh (plain ase and the package's reader and writer).

  python sets.py pick IN.xyz IDS OUT.xyz        the parents of IN with these
                                                mbe_parent ids (e.g. 0:9,100:109)
  python sets.py add-parents NEW.xyz OUT.xyz.gz add NEW's labelled parents to
                                                OUT (by id, sorted)
  python sets.py parents-done OUT.xyz.gz IDS    exit 0 when OUT has every parent
  python sets.py check-set SETS.xyz             exit 0 when SETS holds, for each
                                                parent, every union of 1 .. K-1
                                                whole molecules once (to label)
  python sets.py merge BATCH.xyz OUT.xyz.gz     add BATCH's complete sets to OUT
  python sets.py done OUT.xyz.gz IDS            exit 0 when every id of IDS has
                                                its complete set in OUT
  python sets.py status                         what the data set holds
  python sets.py table REPORT.json              the README's reference MBE table
                                                from `mtt-mbe analyze ... --group-by
                                                n_water`'s report.json

A set is complete when its parent (K waters, mbe_parent) and all its
sub-clusters, the unions of 1 .. K-1 whole waters (2^K - 2), are labelled.
Every labelled structure written here gets ``info["level"]``, the level of
theory that make.sh exports as LEVEL. OUT is rewritten atomically (a
temporary file, then a rename), so it can be committed while a run goes on.
"""

import itertools
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from metatrain_mbe.data import read_structures, write_structures

HERE = Path(__file__).parent


def read(path):
    """Every frame of an extended XYZ file (compressed or not), none if missing."""
    return read_structures(path) if Path(path).exists() else []


def ids_of(text):
    """The ids of a list of ranges such as ``0:9,100``."""
    ids = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        ids += range(int(first), int(last or first) + 1)
    return ids


def stamp(frames):
    """Record the level of theory (make.sh's LEVEL) in every frame."""
    level = os.environ.get("LEVEL")
    if not level:
        sys.exit("sets.py: LEVEL (the level of theory, set by make.sh) is not set")
    for atoms in frames:
        atoms.info["level"] = level
    return frames


def molecules(atoms):
    """{fragment id: sorted atom indices} of a structure."""
    groups = defaultdict(list)
    for i, f in enumerate(atoms.arrays["mbe_fragment"]):
        groups[int(f)].append(i)
    return groups


def expected_subsets(parent):
    """The atom sets (tuples) of the unions of 1 .. K-1 whole molecules."""
    mols = list(molecules(parent).values())
    return {
        tuple(sorted(i for m in combo for i in m))
        for m in range(1, len(mols))
        for combo in itertools.combinations(mols, m)
    }


def sets_of(frames):
    """{parent id: (parent, {atom set: frame})} of the frames."""
    groups = defaultdict(lambda: [None, {}])
    for atoms in frames:
        group = groups[int(atoms.info["mbe_parent"])]
        if "mbe_atoms" in atoms.info:
            group[1][tuple(int(i) for i in atoms.info["mbe_atoms"])] = atoms
        else:
            group[0] = atoms
    return groups


def complete_sets(frames):
    """{parent id: [parent, sub-clusters...]} of the complete sets."""
    complete = {}
    for pid, (parent, subs) in sets_of(frames).items():
        if parent is not None and set(subs) == expected_subsets(parent):
            complete[pid] = [parent] + [
                subs[key] for key in sorted(subs, key=lambda k: (len(k), k))
            ]
    return complete


def check_set(path):
    """Exit 1 unless every parent of ``path`` comes with exactly its unions
    of 1 .. K-1 whole molecules, each with its ``mbe_fragment``."""
    groups = sets_of(read(path))
    for pid, (parent, subs) in groups.items():
        if parent is None or set(subs) != expected_subsets(parent):
            sys.exit(f"{path}: parent {pid}: not every union of whole molecules")
        for key, atoms in subs.items():
            if not np.array_equal(
                atoms.arrays["mbe_fragment"], parent.arrays["mbe_fragment"][list(key)]
            ):
                sys.exit(f"{path}: parent {pid} {key}: wrong mbe_fragment")
    print(f"{path}: {len(groups)} parents, every union of whole molecules once")


def merge(batch, out):
    """Add the complete sets of ``batch`` that ``out`` lacks to ``out``."""
    have = complete_sets(read(out))
    new = complete_sets(read(batch))
    added = sorted(set(new) - set(have))
    if not added:
        print(f"{out}: nothing to add from {batch}")
        return
    frames = []
    for pid in sorted(set(have) | set(added)):
        frames += have[pid] if pid in have else stamp(new[pid])
    write_structures(out, frames)
    print(f"{out}: added the sets of parents {added}; {len(have) + len(added)} complete sets")


def add_parents(new, out):
    """Add the labelled parents of ``new`` to ``out`` (by id, sorted)."""
    frames = {int(a.info["mbe_parent"]): a for a in read(out)}
    added = [a for a in read(new) if int(a.info["mbe_parent"]) not in frames]
    frames.update({int(a.info["mbe_parent"]): a for a in stamp(added)})
    write_structures(out, [frames[pid] for pid in sorted(frames)])
    print(f"{out}: added {len(added)} parents; {len(frames)} in all")


def status():
    """Print the parents and complete sets per size, and the store's strategies."""
    parents = read(HERE / "parents.xyz.gz")
    sizes = Counter(int(a.info["n_water"]) for a in parents)
    print(
        f"parents.xyz.gz: {len(parents)} labelled parents, by waters {dict(sorted(sizes.items()))}"
    )
    sets = complete_sets(read(HERE / "subclusters.xyz.gz"))
    sizes = Counter(len(group[0]) // 3 for group in sets.values())
    structures = sum(len(group) for group in sets.values())
    print(
        f"subclusters.xyz.gz: {len(sets)} complete sets ({structures} structures), "
        f"by waters {dict(sorted(sizes.items()))}"
    )
    store = HERE / "labels.db"
    if store.exists():
        import ase.db

        db = ase.db.connect(str(store))
        counts = Counter(row.get("strategy") or row.status for row in db.select())
        print(f"labels.db: {sum(counts.values())} structures, by strategy {dict(counts)}")


def table(report):
    """Print the README's table of Ṽ^(m) and |dṼ^(m)/dr| per cluster size."""
    import json

    groups = json.loads(Path(report).read_text())["reference"]["groups"]
    sizes = sorted((k for k in groups if k != "all"), key=int)

    def cell(group, m, quantity, digits):
        value = groups[group]["orders"].get(str(m), {}).get(quantity)
        if value is None:
            return ""
        return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}".replace("-", "−")

    head = " | ".join(f"Ṽ (H2O){n} ({groups[n]['n_parents']})" for n in sizes)
    forces = " | ".join(f"\\|dṼ/dr\\| (H2O){n}" for n in sizes)
    print(f"| m | {head} | {forces} |")
    print("|---" * (1 + 2 * len(sizes)) + "|")
    for m in range(2, max(int(n) for n in sizes) + 1):
        values = [cell(n, m, "V_tilde", 4) for n in sizes]
        values += [cell(n, m, "dV_tilde", 3) for n in sizes]
        print(f"| {m} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["help"]
    if command == "pick":
        wanted = set(ids_of(args[1]))
        frames = [a for a in read(args[0]) if int(a.info["mbe_parent"]) in wanted]
        write_structures(args[2], frames)
        print(f"{args[2]}: {len(frames)} parents")
    elif command == "add-parents":
        add_parents(*args)
    elif command == "parents-done":
        have = {int(a.info["mbe_parent"]) for a in read(args[0])}
        sys.exit(0 if set(ids_of(args[1])) <= have else 1)
    elif command == "check-set":
        check_set(*args)
    elif command == "merge":
        merge(*args)
    elif command == "done":
        have = complete_sets(read(args[0]))
        sys.exit(0 if all(i in have for i in ids_of(args[1])) else 1)
    elif command == "status":
        status()
    elif command == "table":
        table(*args)
    else:
        sys.exit(__doc__)
