"""A resumable store of labels: one SQLite (ase.db) row per distinct structure.

Rows are keyed by :func:`structure_key`, a hash of the atomic numbers, the
positions (rounded to 1e-8 Å), the calculator's description and, for a
structure whose charge or spin differs from the one the calculator gives a
structure that states none, its total charge and 2S, so the same structure
labelled with the same settings is computed once, and a killed run finds every
result it had committed. Each result is committed as soon as it arrives.

One labelling run at a time works on a store: :meth:`LabelStore.lock` holds
the file ``STORE.running`` (:func:`~metatrain_mbe.compute.locks.holding`: the
process id and host of the run; ase.db itself takes ``STORE.lock`` for each
write) and refuses a second run while the first is alive; the file of a run
that was killed (its process is gone) is taken over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import ase
import ase.db
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from ...errors import MBEInputError
from ..locks import holding

__all__ = ["LabelStore", "calculator_description", "structure_key"]


def structure_key(atoms: ase.Atoms, calculator: str, state: tuple[int, int] | None = None) -> str:
    """Hash of numbers, positions (1e-8 Å), the calculator description and,
    when given, ``state``: the structure's total charge (e) and 2S, given
    when they differ from the calculator's for a structure that states none
    (so that such a structure keeps the key it had before charge and spin
    were read).

    >>> a = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    >>> structure_key(a, "pyscf") == structure_key(a.copy(), "pyscf")
    True
    >>> structure_key(a, "pyscf") == structure_key(a, "pyscf", (1, 1))
    False
    """
    digest = hashlib.sha256()
    digest.update(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(np.asarray(atoms.positions, dtype=np.float64), 8).tobytes())
    digest.update(calculator.encode())
    if state is not None:
        charge, spin = state
        digest.update(json.dumps({"charge": int(charge), "2S": int(spin)}).encode())
    return digest.hexdigest()[:32]


def _stored(key: str) -> str:
    """The key as written to ase.db, which refuses strings that read as numbers
    (a hexadecimal hash such as ``"6539...606e70"``): a letter in front."""
    return f"k{key}"


class LabelStore:
    """Labels by structure key, in an ase.db SQLite file.

    :param path: database file (created by the first :meth:`put`).
    :raises MBEInputError: when ``path`` exists and is not a label store.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = ase.db.connect(str(self.path), type="db", append=True)
        if self.path.exists():
            try:
                rows = list(self.db.select(limit=1))
            except Exception as error:  # sqlite3 and ase.db raise several types
                raise self._not_a_store(" ".join(str(error).split())) from error
            for row in rows:
                self._check_row(row)

    def _not_a_store(self, reason: str) -> MBEInputError:
        return MBEInputError(f"{self.path}: not a label store of `mtt-mbe label` ({reason})")

    def _check_row(self, row) -> None:
        if not isinstance(row.get("key"), str) or row.get("status") not in ("ok", "failed"):
            raise self._not_a_store(f"row {row.id} has no key and status")

    def entries(self) -> dict[str, dict]:
        """Every stored row, labelled (``status`` ``"ok"``) or failed:
        ``{key: {"status", "energy", "forces", "strategy", "error"}}`` (eV, eV/Å)."""
        if not self.path.exists():
            return {}
        rows = {}
        for row in self.db.select():
            self._check_row(row)
            entry = {"status": row.status, "error": row.get("error", "")}
            if row.status == "ok":
                entry["energy"] = row.energy
                entry["forces"] = row.get("forces")
                entry["strategy"] = row.get("strategy", "")
            rows[row.key[1:]] = entry
        return rows

    def put(self, key: str, atoms: ase.Atoms, result: dict) -> None:
        """Commit one result: ``{"energy", "forces", "strategy"}`` (``forces``
        absent for energy-only methods) or ``{"error"}``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atoms = ase.Atoms(numbers=atoms.numbers, positions=atoms.positions)
        existing = [row.id for row in self.db.select(key=_stored(key))]
        if existing:
            self.db.delete(existing)
        if "error" in result:
            self.db.write(atoms, key=_stored(key), status="failed", error=result["error"][:500])
        else:
            atoms.calc = SinglePointCalculator(
                atoms,
                energy=result["energy"],
                forces=np.asarray(result["forces"]) if "forces" in result else None,
            )
            self.db.write(atoms, key=_stored(key), status="ok", strategy=result.get("strategy", ""))

    def describe(self) -> str:
        """A one-line description (for messages)."""
        count = self.db.count() if self.path.exists() else 0
        return f"{self.path} ({count} structures)"

    def lock(self) -> contextlib.AbstractContextManager[Path]:
        """Hold the store's lock file ``STORE.running`` while labelling (see
        :func:`~metatrain_mbe.compute.locks.holding`).

        :raises MBEInputError: while another live run holds it.
        """
        return holding(self.path, "labelling run")


def calculator_description(name: str, kwargs: dict) -> str:
    """A stable text for a calculator and its arguments (part of the key)."""
    return json.dumps({"calculator": name, **kwargs}, sort_keys=True, default=str)
