"""Run a calculator on many structures: local processes or a Dask cluster.

Each task is one structure; workers build the calculator themselves (one
thread each) and return plain numbers, so the main process alone writes to the
:class:`~.store.LabelStore`, committing every result as it arrives.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np

__all__ = ["make_calculator", "compute_label", "run_tasks"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def make_calculator(name: str, kwargs: dict):
    """``"pyscf"`` (:class:`.PySCFCalculator`) or any ase calculator as
    ``"module:Class"``, built with ``kwargs``."""
    if name == "pyscf":
        from .pyscf_calculator import PySCFCalculator

        return PySCFCalculator(**kwargs)
    module, _, cls = name.partition(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


def _one_thread() -> None:
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
    _one_thread()
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


def run_tasks(
    tasks: list[tuple], workers: int = 1, scheduler: str | None = None
) -> Iterator[tuple[str, dict]]:
    """Yield ``(key, result)`` of :func:`compute_label` as tasks finish.

    Close the generator (``contextlib.closing``) when stopping early: the tasks
    not started yet are then cancelled instead of computed and thrown away.

    :param workers: local worker processes (one thread each).
    :param scheduler: address of a Dask distributed scheduler; when given, the
        tasks run on its workers instead.
    """
    if scheduler is not None:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed

        with Client(scheduler) as client:
            futures = client.map(compute_label, tasks, pure=False)
            for future in dask_completed(futures):
                yield future.result()
        return
    if workers <= 1:
        for task in tasks:
            yield compute_label(task)
        return
    _one_thread()  # inherited by the workers
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(compute_label, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:  # also when the consumer stops early: drop the tasks not started
        pool.shutdown(wait=True, cancel_futures=True)
