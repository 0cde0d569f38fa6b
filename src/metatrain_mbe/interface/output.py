"""Write a command's outputs all at once, or not at all."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

__all__ = ["staged_directory"]


@contextlib.contextmanager
def staged_directory(path: str | Path):
    """Yield a temporary directory next to ``path``; on success move its
    contents into ``path`` (created if needed), on error delete it.

    A command that fails half-way thus leaves no half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield stage
        path.mkdir(exist_ok=True)
        for item in sorted(stage.rglob("*")):
            target = path / item.relative_to(stage)
            if item.is_dir():
                target.mkdir(exist_ok=True)
            else:
                item.replace(target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
