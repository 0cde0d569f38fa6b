"""Helpers of make.sh (plain ase, no package internals).

  python sets.py merge BATCH.xyz OUT.xyz.gz   add BATCH's complete sets to OUT
  python sets.py done OUT.xyz.gz IDS          exit 0 when every id of IDS
                                              (e.g. 0:11,200) has its set in OUT
  python sets.py concat OUT.xyz.gz IN...      labelled files into one
  python sets.py status                       what the data set holds
  python sets.py table REPORT.json            the README's reference MBE table
                                              from `mtt-mbe analyze ... --group-by
                                              regime`'s report.json
  python sets.py fallbacks OUT.xyz IN...      list the structures of IN... that
                                              labels.db labelled with a fallback
                                              strategy (not diis); write them,
                                              with their stored labels, to OUT
  python sets.py forget IN.xyz                delete IN's structures from
                                              labels.db (to label them again)
  python sets.py compare OLD.xyz              OLD's energies against labels.db's
                                              (strategy, new - old), per structure
  python sets.py pick IN OUT IDS              the parents of IN with these ids
                                              (e.g. 0:99) to OUT
  python sets.py theory OUT                   restamp OUT's mbe_theory with the
                                              text `make.sh restricted` labels
                                              write now (labels recorded before a
                                              setting was named in the record)
  python sets.py stamp IN KEY=VALUE...        set these info keys on every
                                              frame of IN (rewritten)
  python sets.py spin NEW OLD                 NEW's labels against OLD's (same
                                              structures: mbe_parent, mbe_atoms),
                                              per number of atoms
A set is complete when its parent (8 atoms, mbe_parent) and all its
sub-clusters m = 2..7 (246) are labelled. OUT is rewritten atomically (a
temporary file, then a rename), so it can be committed while a run goes on.
"""

import sys
from collections import defaultdict
from math import comb
from pathlib import Path

import numpy as np

from metatrain_mbe.data import read_structures, write_structures

SIZE = 8
SUBS = sum(comb(SIZE, m) for m in range(2, SIZE))  # 246


def read(path):
    """Every frame of an extended XYZ file (compressed or not), none if missing."""
    return read_structures(path) if Path(path).exists() else []


def complete_sets(frames):
    """{parent id: [frames]} of the complete sets, and the isolated atoms."""
    groups, isolated = defaultdict(list), []
    for atoms in frames:
        if "mbe_parent" in atoms.info:
            groups[int(atoms.info["mbe_parent"])].append(atoms)
        elif len(atoms) == 1:
            isolated.append(atoms)
    complete = {}
    for pid, group in groups.items():
        parents = [a for a in group if "mbe_atoms" not in a.info and len(a) == SIZE]
        subs = {tuple(a.info["mbe_atoms"]) for a in group if "mbe_atoms" in a.info}
        if len(parents) == 1 and len(subs) == SUBS:
            complete[pid] = group
    return complete, isolated


def merge(batch, out):
    """Add the complete sets of ``batch`` that ``out`` lacks to ``out``."""
    have, isolated = complete_sets(read(out))
    new, new_isolated = complete_sets(read(batch))
    added = sorted(set(new) - set(have))
    if not added:
        print(f"{out}: nothing to add from {batch}")
        return
    frames = (isolated or new_isolated)[:1]
    for pid in sorted(set(have) | set(added)):
        frames += have[pid] if pid in have else new[pid]
    write_structures(out, frames)
    print(f"{out}: added the sets of parents {added}; {len(have) + len(added)} complete sets")


def status():
    """Print the parents, the complete sets per regime and the store's strategies."""
    here = Path(__file__).parent
    parents = read(here / "parents.xyz.gz")
    regimes = defaultdict(int)
    for atoms in parents:
        regimes[atoms.info["regime"]] += 1
    print(f"parents.xyz.gz: {len(parents)} labelled parents {dict(regimes)}")
    sets, isolated = complete_sets(read(here / "subclusters.xyz.gz"))
    low = sorted(p for p, g in sets.items() if g[0].info.get("regime") == "low")
    high = sorted(p for p in sets if p not in low)
    print(
        f"subclusters.xyz.gz: {len(sets)} complete sets ({len(low)} low, {len(high)} high), "
        f"{len(isolated)} isolated atom"
    )
    store = here / "labels.db"
    if store.exists():
        from collections import Counter

        import ase.db

        db = ase.db.connect(str(store))
        counts = Counter(row.get("strategy") or row.status for row in db.select())
        failed = counts.get("failed", 0)
        total = sum(counts.values())
        print(
            f"labels.db: {total} structures, by strategy {dict(counts)}; "
            f"failed {failed} ({100 * failed / max(total, 1):.2f} %)"
        )


def geometry(atoms):
    """What identifies a structure in labels.db without the package: the atomic
    numbers and the positions to 1e-8 Å (as in the store's keys)."""
    numbers = tuple(int(z) for z in atoms.numbers)
    return numbers, np.round(np.asarray(atoms.positions, dtype=float), 8).tobytes()


def store_rows():
    """{geometry: row} of labels.db (one calculator: make.sh's)."""
    import ase.db

    db = ase.db.connect(str(Path(__file__).parent / "labels.db"))
    return db, {geometry(row): row for row in db.select()}


def name(atoms):
    """Parent and atom set of a structure, for the lists."""
    atoms_set = atoms.info.get("mbe_atoms")
    atoms_set = "parent" if atoms_set is None else " ".join(str(int(i)) for i in atoms_set)
    return f"{int(atoms.info.get('mbe_parent', -1)):4d}  [{atoms_set}]"


def fallbacks(out, paths):
    """Write (and list) the distinct structures of ``paths`` that labels.db
    labelled with a fallback strategy, with their stored labels."""
    _, rows = store_rows()
    found = {}
    for path in paths:
        for atoms in read(path):
            row = rows.get(geometry(atoms))
            if row is None:
                sys.exit(f"{path}: {name(atoms)} is not in labels.db")
            if row.get("strategy", "diis") != "diis" and geometry(atoms) not in found:
                atoms.info["old_strategy"] = row.get("strategy")
                found[geometry(atoms)] = atoms
    frames = sorted(found.values(), key=lambda a: (int(a.info["mbe_parent"]), len(a)))
    print("parent  atoms  n  strategy  energy/eV")
    for atoms in frames:
        print(
            f"{name(atoms)}  {len(atoms)}  {atoms.info['old_strategy']}  "
            f"{atoms.get_potential_energy():.4f}"
        )
    counts = defaultdict(int)
    for atoms in frames:
        counts[atoms.info["old_strategy"]] += 1
    print(f"{len(frames)} structures labelled by a fallback: {dict(counts)}")
    write_structures(out, frames)


def forget(path):
    """Delete the structures of ``path`` from labels.db."""
    db, rows = store_rows()
    ids = [rows[geometry(a)].id for a in read(path) if geometry(a) in rows]
    db.delete(ids)
    print(f"labels.db: deleted {len(ids)} structures of {path}")


def compare(path):
    """Energies of ``path`` (old labels) against labels.db's (new)."""
    _, rows = store_rows()
    print("parent  atoms  n  old strategy -> new  old/eV  new/eV  new - old/eV")
    changes = defaultdict(list)
    for atoms in read(path):
        row = rows[geometry(atoms)]
        old, new = atoms.get_potential_energy(), row.energy
        before, after = atoms.info.get("old_strategy", "?"), row.get("strategy")
        print(
            f"{name(atoms)}  {len(atoms)}  {before} -> {after}  {old:.4f}  {new:.4f}  "
            f"{new - old:+.4f}"
        )
        changes[(before, "odd" if len(atoms) % 2 else "even")].append(new - old)
    for (before, parity), delta in sorted(changes.items()):
        delta = np.array(delta)
        moved = np.abs(delta) > 1e-4
        print(
            f"{before}, {parity} electrons: {len(delta)} structures, {moved.sum()} changed "
            f"by more than 0.1 meV; new - old from {delta.min():+.3f} to {delta.max():+.3f} eV"
        )


def _ids(text):
    """The ids of ``0:11,200`` (ranges inclusive)."""
    ids = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        ids += range(int(first), int(last or first) + 1)
    return ids


def pick(path, out, ids):
    """Write the parents of ``path`` whose ids are in ``ids`` to ``out``."""
    wanted = set(_ids(ids))
    frames = [
        a for a in read(path) if "mbe_atoms" not in a.info and a.info.get("mbe_parent") in wanted
    ]
    write_structures(out, frames)
    print(f"{out}: {len(frames)} parents")


def stamp(path, *pairs):
    """Set ``info[KEY] = VALUE`` for every ``KEY=VALUE`` on every frame of ``path``."""
    frames = read(path)
    for pair in pairs:
        key, value = pair.split("=", 1)
        for atoms in frames:
            atoms.info[key] = value
    write_structures(path, frames)
    print(f"{path}: {len(frames)} structures stamped {' '.join(pairs)}")


def spin(new, old):
    """How the labels of ``new`` differ from those of ``old`` for the same
    structures, per number of atoms (the isolated atom, sub-clusters, parents)."""

    def key(atoms):
        return (atoms.info.get("mbe_parent"), tuple(atoms.info.get("mbe_atoms", ())), len(atoms))

    before = {key(a): a.get_potential_energy() for a in read(old)}
    changes = defaultdict(list)
    for atoms in read(new):
        if key(atoms) in before:
            changes[len(atoms)].append(atoms.get_potential_energy() - before[key(atoms)])
    print("atoms  structures  changed > 1 meV  new - old: min / mean / max (eV)")
    for n, delta in sorted(changes.items()):
        delta = np.array(delta)
        print(
            f"{n}  {len(delta)}  {(np.abs(delta) > 1e-3).sum()}  "
            f"{delta.min():+.4f} / {delta.mean():+.4f} / {delta.max():+.4f}"
        )


#: the PySCF settings of `make.sh restricted` (its `label` command line)
RESTRICTED = {
    "method": "dft",
    "xc": "pbe",
    "basis": "cc-pvdz",
    "smearing": 0.025,
    "spin_treatment": "restricted",
    "spin": None,
    "grid_level": 2,
}


def theory(out):
    """Set ``mbe_theory`` of every label of ``out`` to the text that
    ``make.sh restricted`` writes now. Only labels whose recorded settings are
    all among those (a record made before a setting with its default value
    was named in it) are restamped; any other is an error."""
    from metatrain_mbe.compute.labelling.executor import full_settings
    from metatrain_mbe.compute.labelling.label import theory_text

    text = theory_text("pyscf", full_settings("pyscf", RESTRICTED))
    frames = read(out)
    for atoms in frames:
        old = atoms.info.get("mbe_theory", "")
        if not set(old.split(";")) <= set(text.split(";")):
            sys.exit(f"{out}: {name(atoms)}: mbe_theory {old} is another level of theory")
        atoms.info["mbe_theory"] = text
    write_structures(out, frames)
    print(f"{out}: {len(frames)} labels with mbe_theory {text}")


def table(report):
    """Print the README's table of Ṽ^(m) and |dṼ^(m)/dr| per regime."""
    import json

    groups = json.loads(Path(report).read_text())["reference"]["groups"]
    low, high = groups["low"], groups["high"]

    def cell(group, m, quantity, digits):
        value = group["orders"][str(m)][quantity]
        return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}".replace("-", "−")

    print(
        f"| m | Ṽ low ρ ({low['n_parents']}) | Ṽ high ρ ({high['n_parents']}) "
        "| \\|dṼ/dr\\| low ρ | \\|dṼ/dr\\| high ρ |"
    )
    print("|---|---|---|---|---|")
    for m in sorted(int(k) for k in low["orders"]):
        print(
            f"| {m} | {cell(low, m, 'V_tilde', 3)} | {cell(high, m, 'V_tilde', 3)} "
            f"| {cell(low, m, 'dV_tilde', 2)} | {cell(high, m, 'dV_tilde', 2)} |"
        )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "merge":
        merge(*args)
    elif command == "done":
        have, _ = complete_sets(read(args[0]))
        sys.exit(0 if all(i in have for i in _ids(args[1])) else 1)
    elif command == "concat":
        frames = [a for path in args[1:] for a in read(path)]
        if not frames:
            sys.exit(f"{args[0]}: nothing to write")
        write_structures(args[0], frames)
        print(f"{args[0]}: {len(frames)} structures")
    elif command == "status":
        status()
    elif command == "table":
        table(*args)
    elif command == "fallbacks":
        fallbacks(args[0], args[1:])
    elif command == "forget":
        forget(*args)
    elif command == "compare":
        compare(*args)
    elif command == "pick":
        pick(*args)
    elif command == "spin":
        spin(*args)
    elif command == "stamp":
        stamp(*args)
    elif command == "theory":
        theory(*args)
    else:
        sys.exit(__doc__)
