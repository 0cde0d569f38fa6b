"""Label many structures, resumably: the library behind ``mtt-mbe label``.

:func:`label_structures` computes every structure not yet in the
:class:`~.store.LabelStore` (each distinct structure once), commits each result
as it arrives, and returns the structures labelled with energies (eV) and forces
(eV/Å), and those that failed with their error. It checks the calculator before
touching the store, and holds the store's lock while it works (one run at a
time per store, see :mod:`.store`).

Each label records its level of theory in ``info["mbe_theory"]``
(:func:`theory_text`: the calculator and every setting, defaults included,
e.g. the method, functional, basis, smearing, spin treatment and charge of
PySCF, and DMRG's bond dimension and sweeps;
:meth:`.PySCFCalculator.theory_settings`) and, for PySCF, the solver strategy
in ``info["mbe_strategy"]`` (the SCF strategy that converged, FCI's solver,
what the UHF stability loop of CCSD(T) did, DMRG's sweeps).
The store key holds the same settings, so labels of two levels of theory
never mix, and an expansion refuses sub-clusters of different levels
(:func:`metatrain_mbe.data.sets.collect_sets`).

Charge and spin are the structure's own where it states them (``info["charge"]``,
``info["spin"]`` the multiplicity 2S + 1, or the sums of ``initial_charges``
and ``initial_magmoms``: :func:`~.executor.stated_state`),
else the calculator's (:meth:`.PySCFCalculator.state_of`). A structure whose
own charge or spin PySCF cannot compute is refused before anything is computed.
A PySCF label records the state it was computed with in ``info["charge"]``
and ``info["spin"]`` (2S + 1); the store key holds it when it is not the
calculator's for a structure that states none (:func:`~.store.structure_key`).
Other calculators get the structure's fields (:func:`~.executor.electronic_fields`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import ase
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator

from ...data.io import CHARGE_KEY, SPIN_KEY, STRATEGY_KEY, THEORY_KEY, describe
from ...errors import MBEInputError
from ..tasks import map_tasks
from .executor import (
    check_calculator,
    compute_label,
    electronic_fields,
    full_settings,
    one_thread,
)
from .pyscf_calculator import PySCFCalculator, default_state, electronic_state
from .store import LabelStore, calculator_description, structure_key

__all__ = ["LabelOutcome", "electronic_states", "label_structures", "theory_text"]


@dataclass
class LabelOutcome:
    """The result of :func:`label_structures`.

    :param labelled: copies of the labelled input structures, in input order,
        with a calculator holding ``energy`` (eV) and ``forces`` (eV/Å), and
        ``info["mbe_theory"]`` (and ``info["mbe_strategy"]`` when the
        calculator names one; for PySCF, ``info["charge"]`` in e and
        ``info["spin"]``, 2S + 1, of the state computed).
    :param failed: the structures that failed, with their error message.
    :param distinct: number of distinct structures of the input.
    :param computed: number of structures computed by this call.
    """

    labelled: list[ase.Atoms] = field(default_factory=list)
    failed: list[tuple[ase.Atoms, str]] = field(default_factory=list)
    distinct: int = 0
    computed: int = 0


def label_structures(
    frames: list[ase.Atoms],
    calculator: str,
    kwargs: dict,
    store: LabelStore,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LabelOutcome:
    """Energies and forces of ``frames``, from the store or computed.

    :param calculator: ``"pyscf"`` or an ase calculator as ``"module:Class"``.
    :param kwargs: keyword arguments of the calculator (part of the store key).
    :param store: where results are committed and looked up.
    :param workers: local worker processes (one thread each).
    :param scheduler: address of a Dask distributed scheduler (instead of workers).
    :param retry_failed: compute again the structures that failed before.
    :param progress: called with a one-line message before computing; a
        progress bar is shown when given.
    :raises MBEInputError: for a calculator or keywords that
        :func:`~.executor.check_calculator` refuses, a periodic structure given to
        PySCF, a structure whose charge or spin is refused (:func:`electronic_states`),
        or a store that another run is using.
    """
    check_calculator(calculator, kwargs)
    pyscf = calculator == "pyscf"
    if pyscf:
        for atoms in frames:
            if np.any(atoms.pbc):
                raise MBEInputError(
                    f"{describe(atoms)}: field 'pbc' is periodic; PySCF labels finite clusters"
                )
    states, keyed = electronic_states(frames, calculator, kwargs)
    settings = full_settings(calculator, kwargs)
    description = calculator_description(calculator, settings)
    keys = [structure_key(atoms, description, state) for atoms, state in zip(frames, keyed)]
    with store.lock():
        stored = store.entries()
        todo: dict[str, ase.Atoms] = {}
        for key, atoms in zip(keys, frames):
            known = stored.get(key)
            if key not in todo and (known is None or (known["status"] != "ok" and retry_failed)):
                todo[key] = atoms
        if progress is not None:
            progress(
                f"{len(frames)} structures, {len(set(keys))} distinct, {len(todo)} to compute; "
                f"store {store.describe()}"
            )
        tasks = [
            (
                key,
                a.numbers.tolist(),
                a.positions.tolist(),
                calculator,
                kwargs,
                electronic_fields(a),
            )
            for key, a in todo.items()
        ]
        results = map_tasks(
            compute_label,
            tasks,
            workers=workers,
            scheduler=scheduler,
            progress=progress is not None,
            description="label",
            initializer=one_thread,
        )
        with contextlib.closing(results):
            for key, result in results:
                store.put(key, todo[key], result)

    stored = store.entries()
    theory = theory_text(calculator, settings)
    outcome = LabelOutcome(distinct=len(set(keys)), computed=len(tasks))
    for key, atoms, (charge, spin) in zip(keys, frames, states):
        entry = stored[key]
        if entry["status"] == "ok":
            atoms = atoms.copy()
            atoms.calc = SinglePointCalculator(
                atoms, energy=entry["energy"], forces=entry["forces"]
            )
            atoms.info[THEORY_KEY] = theory
            if pyscf:
                atoms.info[CHARGE_KEY], atoms.info[SPIN_KEY] = charge, spin + 1
            if entry.get("strategy"):
                atoms.info[STRATEGY_KEY] = entry["strategy"]
            outcome.labelled.append(atoms)
        else:
            outcome.failed.append((atoms, entry["error"]))
    return outcome


def electronic_states(
    frames: list[ase.Atoms], calculator: str, kwargs: dict
) -> tuple[list[tuple[int, int]], list[tuple[int, int] | None]]:
    """The ``(charge in e, 2S)`` of each structure, and what its store key
    holds of it: the state where it differs from the calculator's for a
    structure that states none (:func:`~.pyscf_calculator.default_state`),
    else None.

    PySCF: :meth:`.PySCFCalculator.state_of` with ``kwargs``, which checks the
    charge and spin a structure states. Other calculators: what the structure
    states (:func:`~.pyscf_calculator.electronic_state`; neutral and of the
    lowest 2S where it states none), which they get in its fields.

    :raises MBEInputError: naming the first structure refused, before
        anything is computed.
    """
    if calculator == "pyscf":
        try:
            pyscf = PySCFCalculator(**kwargs)
        except MBEInputError:  # already one line for the user (DMRG without block2)
            raise
        except ValueError as error:
            raise MBEInputError(f"--calc-kwargs: {error}") from error
        state_of, default_of = pyscf.state_of, pyscf.default_state
    else:
        state_of, default_of = electronic_state, default_state
    states = [state_of(atoms) for atoms in frames]
    keyed = [
        None if state == default_of(atoms.numbers) else state
        for atoms, state in zip(frames, states)
    ]
    return states, keyed


def theory_text(calculator: str, settings: dict) -> str:
    """The level of theory as one word: the calculator, then every setting
    (sorted, JSON values for non-strings), separated by ``;``.

    >>> theory_text("pyscf", {"xc": "pbe", "smearing": 0.025, "spin": None})
    'pyscf;smearing=0.025;spin=null;xc=pbe'
    """
    values = [
        f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in sorted(settings.items())
    ]
    return ";".join([calculator, *values])
