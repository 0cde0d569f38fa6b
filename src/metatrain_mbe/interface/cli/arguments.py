"""What every ``mtt-mbe`` command shares: the parser, argument types checked
while parsing, and the outputs a command may replace.

Importing this module imports neither torch nor metatrain: a bad flag or a
missing, unreadable or malformed input file is reported in one line before
the heavy libraries load. Library constants shown in ``--help`` are :class:`Constant` s, imported
only when the help is printed or the command runs (a flag with Constant
choices needs a ``metavar``, else argparse lists them when registering it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import zipfile
from pathlib import Path

__all__ = [
    "CUTOFF_HELP",
    "Arguments",
    "Constant",
    "HelpFormatter",
    "Input",
    "Output",
    "Parser",
    "add_output",
    "at_least",
    "check_device",
    "check_inputs_kept",
    "clear_leftovers",
    "cutoffs",
    "device",
    "first_missing",
    "holds_no_file",
    "input_file",
    "input_folder",
    "model_file",
    "non_negative_float",
    "output",
    "positive_float",
    "remove",
    "resumable",
    "scheduler",
    "set_aside",
    "structures_file",
    "subcluster_calls",
]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default in ``--help``, except unset (None or False) and required ones."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.required:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser that reports a bad command line in one line (no
    usage block) with exit code 2, shows defaults in ``--help``, and accepts a
    callable ``description``, built only when the help is printed."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def format_help(self) -> str:
        """The help, with the description built first when it is a callable."""
        if callable(self.description):
            self.description = self.description()
        return super().format_help()

    def error(self, message: str):
        """Print ``prog: error: message`` (one line) and exit with code 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


class Constant:
    """A library constant used as a default (or choices) of a flag, imported
    from ``metatrain_mbe.MODULE`` only when shown or used, so that parsing a
    command line does not import torch. ``plus`` extends a tuple of choices.

    An unset flag's Constant is replaced by its value when the command first
    reads it (:class:`Arguments`), so a command that reads its input file
    first reports a bad file before the constant's module (often torch) loads.
    """

    def __init__(self, module: str, name: str, plus: tuple = ()):
        self.module = module
        self.name = name
        self.plus = plus

    def value(self):
        """The constant (with ``plus`` appended)."""
        value = getattr(importlib.import_module(f"metatrain_mbe.{self.module}"), self.name)
        return (*value, *self.plus) if self.plus else value

    def __str__(self) -> str:
        value = self.value()
        return ", ".join(map(str, value)) if isinstance(value, (tuple, list, dict)) else str(value)

    def __iter__(self):
        return iter(self.value())

    def __contains__(self, item) -> bool:
        return item in self.value()


class Arguments(argparse.Namespace):
    """The parsed command line; a :class:`Constant` default becomes its value
    when it is first read."""

    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if isinstance(value, Constant):
            value = value.value()
            setattr(self, name, value)
        return value


def at_least(minimum: int, what: str):
    """An argument type: an integer ``>= minimum``, described as ``what`` in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not {what} (>= {minimum})")
        return value

    return parse


def subcluster_calls(text: str) -> int:
    """An argument type: sub-clusters per call of an exported model's inner
    model, as ``export_mbe_model(batch_size=...)`` takes it: ``auto`` (-1),
    ``all`` (0, one call) or a number >= 1."""
    named = {"auto": -1, "all": 0}
    if text in named:
        return named[text]
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not auto, all or an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a number of sub-clusters (>= 1)")
    return value


def cutoffs(text: str) -> str:
    """An argument type: distance cutoffs per order (Å), one value (``4.5``) or
    per order (``3:8,4:6``), non-increasing, checked by
    :meth:`~metatrain_mbe.cutoffs.Cutoffs.parse` and kept as text."""
    from ...cutoffs import Cutoffs

    try:
        Cutoffs.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


#: help of every ``--cutoff`` flag
CUTOFF_HELP = (
    "screen sub-clusters by distance (Å): keep S when every two of its bodies are "
    "within R (molecules: their closest atoms); one R, or per order as 3:8,4:6 "
    "(order 3 within 8 Å, 4 and above within 6 Å; orders below the first are not "
    "screened; must not grow with the order)"
)


def _finite_float(text: str, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not (0 <= value < float("inf") and (zero or value > 0)):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number {'>=' if zero else '>'} 0")
    return value


def non_negative_float(text: str) -> float:
    """An argument type: a finite number ``>= 0``."""
    return _finite_float(text, zero=True)


def positive_float(text: str) -> float:
    """An argument type: a finite number ``> 0``."""
    return _finite_float(text, zero=False)


class Input(str):
    """A file a command reads: ``main`` refuses an :class:`Output` that is it
    (the same path, a link to it) or a folder holding it
    (:func:`check_inputs_kept`)."""


def input_file(text: str) -> Input:
    """An argument type: an existing, readable file (an :class:`Input`)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: cannot be read ({error.strerror})") from None
    return Input(text)


def input_folder(text: str) -> str:
    """An argument type: an existing folder (e.g. a model's extensions)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a folder")
    return text


def structures_file(text: str) -> Input:
    """An argument type: an extended XYZ file whose first line is an atom
    count (compressed files are checked when read)."""
    path = input_file(text)
    if Path(text).suffix in (".gz", ".bz2", ".xz"):
        return path
    with open(text, "rb") as stream:
        first = stream.readline(200).split()
    if not first:
        raise argparse.ArgumentTypeError(f"{text}: empty, not an extended XYZ file")
    if not first[0].isdigit():
        raise argparse.ArgumentTypeError(
            f"{text}:line 1: not an extended XYZ file (the line is not an atom count)"
        )
    return path


def model_file(text: str) -> Input:
    """An argument type: an exported model (a TorchScript archive)."""
    path = input_file(text)
    if not zipfile.is_zipfile(text):
        raise argparse.ArgumentTypeError(f"{text}: not an exported (TorchScript) model file")
    return path


class Output(str):
    """A path a command writes. ``main`` refuses an existing one unless
    ``--overwrite`` is given, replaces an old folder whole, and removes the
    folders a failed command created for it.

    :param kind: ``"file"`` or ``"directory"``.
    """

    kind: str

    def __new__(cls, text: str, kind: str):  # noqa: D102 (documented by the class)
        output = super().__new__(cls, text)
        output.kind = kind
        return output


def check_inputs_kept(inputs: list[Input], outputs: list[Output]) -> None:
    """Refuse an output that would destroy an input, with or without
    ``--overwrite``: the same file (same path, or a link to it, symbolic or
    hard), or an output folder holding the input (an old output folder is
    replaced whole).

    :raises MBEInputError: one line naming both.
    """
    from ...errors import MBEInputError

    for output in outputs:
        target = Path(output).resolve()
        for read in inputs:
            source = Path(read).resolve()
            if source == target or (target.exists() and os.path.samefile(source, target)):
                raise MBEInputError(
                    f"{output}: is the input {read}; writing it would destroy what is "
                    "read (choose another output)"
                )
            if output.kind == "directory" and target in source.parents:
                raise MBEInputError(
                    f"{read}: lies inside the output folder {output}, which the command "
                    "replaces whole; choose an output folder that does not hold its inputs"
                )


def _check_writable(text: str, kind: str) -> None:
    """That ``text`` can be written as a ``kind``: not the other kind, and its
    nearest existing folder is a writable folder."""
    path = Path(text)
    if kind == "file" and path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, expected a file")
    if kind == "directory" and path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, expected a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: {parent} is not writable")


def output(kind: str):
    """An argument type: a ``kind`` (``"file"`` or ``"directory"``) the command
    writes, an :class:`Output`."""

    def parse(text: str) -> Output:
        _check_writable(text, kind)
        return Output(text, kind)

    return parse


def resumable(kind: str):
    """An argument type: a ``kind`` the command writes and resumes from (a
    label store, a study folder), so an existing one is expected."""

    def parse(text: str) -> str:
        _check_writable(text, kind)
        return text

    return parse


def add_output(parser: argparse.ArgumentParser, kind: str, help: str, **kwargs) -> None:
    """Register ``-o/--output`` (a ``kind`` :class:`Output`) and ``--overwrite``."""
    parser.add_argument(
        "-o",
        "--output",
        type=output(kind),
        help=help,
        **kwargs,
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs (an output folder is replaced whole)",
    )


def scheduler(text: str) -> str:
    """An argument type: a Dask scheduler address, with dask.distributed installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise argparse.ArgumentTypeError(
            "needs dask.distributed, which is not installed (pip install 'dask[distributed]')"
        ) from None
    return text


def device(text: str) -> str:
    """An argument type: a torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``);
    whether it is available is checked by :func:`check_device`."""
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()):
        raise argparse.ArgumentTypeError(f"'{text}' is not a torch device (cpu, cuda, cuda:N, mps)")
    return text


def check_device(name: str | None) -> None:
    """Raise :class:`MBEInputError` when the torch device ``name`` is not available."""
    if name is None:
        return
    import torch

    from ...errors import MBEInputError

    kind, _, index = name.partition(":")
    if kind == "cuda" and int(index or 0) >= torch.cuda.device_count():
        raise MBEInputError(f"--device {name}: no such CUDA device on this machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise MBEInputError(f"--device {name}: MPS is not available on this machine")


def clear_leftovers(output: Output) -> None:
    """Remove what a killed command left beside ``output``: partial files and
    staging folders (see :func:`metatrain_mbe.data.io.atomic_path` and
    :func:`~metatrain_mbe.data.io.staged_directory`), and put back an old folder
    it had set aside to replace, unless the new one was complete."""
    path = Path(output)
    for item in path.parent.glob(f".{path.name}.*.replaced"):
        if path.exists():
            remove(item)
        else:
            item.rename(path)
    for pattern in (f".tmp-*-{path.name}", f".{path.name}.*.tmp"):
        for item in path.parent.glob(pattern):
            remove(item)


def set_aside(output: Output) -> Path:
    """Move the old folder ``output`` to a hidden sibling; return its new path."""
    path = Path(output)
    aside = path.parent / f".{path.name}.{os.getpid()}.replaced"
    path.rename(aside)
    return aside


def first_missing(output: Output) -> Path | None:
    """The outermost folder of ``output`` that does not exist yet (or the path
    itself), which a failed command must not leave behind; None when it exists."""
    path = Path(output).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def holds_no_file(path: Path) -> bool:
    """Whether ``path`` is a folder tree without a single file."""
    return path.is_dir() and all(item.is_dir() for item in path.rglob("*"))


def remove(path: Path) -> None:
    """Delete a file or a folder tree."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
