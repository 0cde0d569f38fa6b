"""Run independent tasks here or on a Dask cluster, yielding results as they finish.

One executor for every long job of the package (labelling structures, training
the runs of a study): in this process, in a pool of local workers, or on the
workers of a Dask distributed scheduler. A progress bar (tqdm) counts finished
tasks.

Children never outlive this process, even killed with ``kill -9`` (no Python
cleanup then): :func:`die_with_parent` asks Linux to kill a local worker
process, or a subprocess started with it as ``preexec_fn``, as soon as its
parent ends (``PR_SET_PDEATHSIG``; not on macOS, where there is no such call).

>>> sorted(map_tasks(abs, [-2, 1, -3], workers=2, threads=True, progress=False))
[1, 2, 3]
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Generator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

from ..errors import MBEInputError

__all__ = ["SCHEDULER_TIMEOUT", "die_with_parent", "map_tasks"]

#: seconds to wait for a Dask scheduler before the address counts as unreachable
SCHEDULER_TIMEOUT = 10

#: Linux's ``prctl`` (None elsewhere), looked up before any fork: a child
#: started by a threaded process must not load anything before ``exec``
_PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Have this process killed (SIGKILL) when its parent ends; nothing where
    there is no ``prctl`` (macOS).

    Call it in the child: a pool's ``initializer``, or ``preexec_fn`` of a
    subprocess (the setting survives ``exec``). Linux sends the signal when the
    *thread* that forked the child ends, so fork from a thread that lives as
    long as the child: the main thread, or one that waits for the child.

    :param parent: the process id of the parent, when known: a child whose
        parent ended before this call (between the fork and now) ends at once.
    """
    if _PRCTL is None:
        return
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def map_tasks(
    function: Callable[[Any], Any],
    tasks: list,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    threads: bool = False,
    progress: bool = True,
    description: str = "tasks",
    initializer: Callable[[], None] | None = None,
) -> Generator[Any, None, None]:
    """Yield ``function(task)`` for every task, in the order they finish.

    Close the generator (``contextlib.closing``) when stopping early: the tasks
    not started yet are then cancelled instead of computed and thrown away.

    :param function: a module-level function (it travels to worker processes).
    :param workers: local workers; 1 runs the tasks in this process, in order.
    :param scheduler: address of a Dask distributed scheduler; when given, the
        tasks run on its workers instead.
    :param threads: local workers are threads (for tasks that wait on
        subprocesses) rather than processes.
    :param progress: show a tqdm progress bar.
    :param initializer: called in this process before local worker processes
        start (e.g. to limit the threads they inherit).
    """
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=description, unit="task", disable=not progress)
    results = _results(function, tasks, workers, scheduler, threads, initializer)
    try:
        for result in results:
            bar.update()
            yield result
    finally:  # closing this generator cancels the tasks not started
        results.close()
        bar.close()


def _results(
    function, tasks, workers, scheduler, threads, initializer
) -> Generator[Any, None, None]:
    if scheduler is not None:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed

        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except OSError as error:  # unreachable, refused, or not a scheduler
            raise MBEInputError(f"--scheduler {scheduler}: cannot connect ({error})") from error
        with client:
            for future in dask_completed(client.map(function, tasks, pure=False)):
                yield future.result()
        return
    if workers <= 1:
        for task in tasks:
            yield function(task)
        return
    if initializer is not None and not threads:
        initializer()
    pool = ThreadPoolExecutor(workers) if threads else _process_pool(workers)
    try:
        futures = [pool.submit(function, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:  # also when the consumer stops early: drop the tasks not started
        pool.shutdown(wait=True, cancel_futures=True)


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """Local worker processes that end with this one (:func:`die_with_parent`):
    started by this thread, or by a fork server, which ends with this process."""
    served = multiprocessing.get_start_method() == "forkserver"
    return ProcessPoolExecutor(
        workers, initializer=die_with_parent, initargs=(None if served else os.getpid(),)
    )
