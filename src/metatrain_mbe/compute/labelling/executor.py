"""One labelling task: a calculator on one structure, run by
:func:`~metatrain_mbe.compute.tasks.map_tasks` in local processes or on a Dask cluster.

Workers build the calculator themselves (one thread each) and return plain
numbers, so the main process alone writes to the :class:`~.store.LabelStore`,
committing every result as it arrives.
"""

from __future__ import annotations

import importlib
import os

import numpy as np

__all__ = ["compute_label", "make_calculator", "one_thread"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_calculator(name: str, kwargs: dict):
    """``"pyscf"`` (:class:`.PySCFCalculator`) or any ase calculator as
    ``"module:Class"``, built with ``kwargs``."""
    if name == "pyscf":
        from .pyscf_calculator import PySCFCalculator

        return PySCFCalculator(**kwargs)
    module, _, cls = name.partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def one_thread() -> None:
    """Limit this process (and the workers it starts) to one thread."""
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    try:
        from pyscf import lib

        lib.num_threads(1)
    except ImportError:
        pass


def compute_label(task: tuple) -> tuple[str, dict]:
    """Energy (eV) and forces (eV/Å) of one structure, or the error.

    :param task: ``(key, numbers, positions, calculator name, kwargs)``.
    """
    import ase

    key, numbers, positions, name, kwargs = task
    one_thread()
    atoms = ase.Atoms(numbers=numbers, positions=positions)
    atoms.calc = make_calculator(name, kwargs)
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
    except Exception as error:  # any calculator failure is recorded, not fatal
        message = " ".join(str(error).split())
        return key, {"error": f"{type(error).__name__}: {message}"}
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        return key, {"error": "non-finite energy or forces"}
    strategy = getattr(atoms.calc, "strategy", "") or ""
    return key, {
        "energy": float(energy),
        "forces": np.asarray(forces).tolist(),
        "strategy": strategy,
    }
