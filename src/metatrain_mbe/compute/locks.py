"""One run at a time on an output: a lock file beside it.

:func:`holding` creates ``PATH.running``, holding the process id and host of
the run, and deletes it when the run ends. A second run on ``PATH`` is refused
while the first is alive; the file of a run that was killed (its process is gone
from this host) is taken over. The label store (``mtt-mbe label``) and the study
folder (``mtt-mbe study``) are held so.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp, holding(Path(tmp) / "study", "study") as lock:
...     lock.name, lock.exists()
('study.running', True)
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from ..errors import MBEInputError

__all__ = ["holding"]


@contextlib.contextmanager
def holding(path: str | os.PathLike, run: str) -> Iterator[Path]:
    """Hold ``PATH.running`` while the block runs (see the module doc); yields it.

    :param path: the output the run writes (a file or a folder).
    :param run: what a run is, for the message (``"labelling run"``, ``"study"``).
    :raises MBEInputError: while another live run holds it.
    """
    path = Path(path)
    lock = path.with_name(f"{path.name}.running")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            if attempt or not _abandoned(lock):
                owner = _read(lock) or "unknown"
                raise MBEInputError(
                    f"{path}: in use by another {run} (process and host: {owner}; lock file "
                    f"{lock}); wait for it to end, or delete the lock file if that run is gone"
                ) from None
            lock.unlink(missing_ok=True)  # a killed run's: taken over
    os.write(fd, f"{os.getpid()} {socket.gethostname()}".encode())
    os.close(fd)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _read(lock: Path) -> str:
    """The content of a lock file ("" when it is gone)."""
    try:
        return lock.read_text().strip()
    except FileNotFoundError:
        return ""


def _abandoned(lock: Path) -> bool:
    """Whether ``lock`` names a process of this host that no longer runs."""
    try:
        pid, host = _read(lock).split()
        if host != socket.gethostname():
            return False
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):  # another host's, half-written, or alive but not ours
        return False
    return False
