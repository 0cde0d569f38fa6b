"""The ``mtt-mbe`` command line: mirrors ``mtt`` and adds the MBE sub-commands.

Each sub-command lives in its own module with ``add_parser(subparsers)``, which
registers it and sets ``func`` to the function that runs it; the module imports
its library functions inside ``func``, so that a bad command line or input
file is reported before torch and metatrain load.

Every error ends in one line on stderr and a non-zero exit code: 2 for bad
input (a bad flag, or :class:`~metatrain_mbe.MBEInputError`), 1 for any other
fault, whose traceback goes to a log file named in that line (or to stderr
with ``--debug``), 130 when interrupted.

Outputs (:class:`~.arguments.Output`) are never replaced without
``--overwrite``; an old output folder is then replaced whole. An output that
is an input (:class:`~.arguments.Input`: the same file, a link to it, or a
folder holding it) is refused, with or without ``--overwrite``. A failed command
removes the folders it created for its outputs, and the next command with the
same output removes what a killed one left.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import tempfile
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ... import __version__
from ...errors import MBEInputError
from .arguments import (
    Arguments,
    Input,
    Output,
    Parser,
    check_inputs_kept,
    clear_leftovers,
    first_missing,
    holds_no_file,
    remove,
    set_aside,
)

__all__ = ["build_parser", "main"]

#: sub-command modules, in the order ``mtt-mbe --help`` lists them
_COMMANDS = [
    "bulk",
    "sample",
    "subclusters",
    "fragments",
    "label",
    "analyze",
    "train",
    "eval",
    "export",
    "study",
    "schema",
]

_DEBUG_HELP = "print the traceback of an unexpected error (else it goes to a log file)"
_LOG_NOTE = (
    "Errors end in one line: exit code 2 for bad input, 1 for an unexpected fault, "
    f"whose traceback is written to a log file in {tempfile.gettempdir()} named in "
    "that line (or printed with --debug)."
)


def _versions() -> str:
    try:
        metatrain = version("metatrain")
    except PackageNotFoundError:
        metatrain = "not installed"
    return f"mtt-mbe {__version__} (metatrain {metatrain})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mtt-mbe`` with every sub-command registered."""
    parser = Parser(
        prog="mtt-mbe",
        description="Many-body expansion tools for metatrain models.",
        epilog=_LOG_NOTE,
    )
    parser.add_argument("--version", action="version", version=_versions())
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
        command = subparsers.choices[name]
        command.epilog = _LOG_NOTE
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mtt-mbe`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv, namespace=Arguments())
    except SystemExit as done:  # a bad command line (already reported), --help, --version
        return int(done.code or 0)
    try:
        outputs = [value for value in vars(args).values() if isinstance(value, Output)]
        check_inputs_kept([v for v in vars(args).values() if isinstance(v, Input)], outputs)
        with _guarded(outputs, getattr(args, "overwrite", False)):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _error(args, "interrupted")
        return 130
    except Exception as error:
        if getattr(args, "debug", False):
            traceback.print_exc()
        if isinstance(error, MBEInputError):
            _error(args, str(error))
            return 2
        message = _fault(error)
        if not getattr(args, "debug", False):
            message += f" ({_log(args, argv)})"
        _error(args, message)
        return 1


def _fault(error: Exception) -> str:
    """The line of an unexpected fault: ``Type: message``, and for an OSError
    naming one file ``FILE: cause`` (``out/m.pt: no space left on device
    (writing the exported model)``) rather than Python's ``[Errno 28] ...: 'FILE'``."""
    if isinstance(error, OSError) and error.strerror and error.filename and not error.filename2:
        return f"{error.filename}: {error.strerror}"
    return f"{type(error).__name__}: {error}"


def _error(args: argparse.Namespace, message: str) -> None:
    print(f"mtt-mbe {args.command}: error: {' '.join(message.split())}", file=sys.stderr)


def _log(args: argparse.Namespace, argv: list[str]) -> str:
    """Write the current traceback to a new log file; say where."""
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix=f"mtt-mbe-{args.command}-", suffix=".log", delete=False
        ) as log:
            log.write(f"{_versions()}\nmtt-mbe {' '.join(argv)}\n\n{traceback.format_exc()}")
    except OSError:
        return "the log file could not be written; --debug prints the traceback"
    return f"traceback in {log.name}; --debug prints it"


@contextlib.contextmanager
def _guarded(outputs: list[Output], overwrite: bool):
    """Refuse existing outputs without ``overwrite``; replace an old folder
    whole; on failure remove what the command created and put back what it
    replaced."""
    for output in outputs:
        clear_leftovers(output)
        path = Path(output)
        if path.exists() and not overwrite and not (path.is_dir() and not any(path.iterdir())):
            raise MBEInputError(f"{output}: already exists; --overwrite replaces it")
    created = [path for path in map(first_missing, outputs) if path is not None]
    own = {Path(output).absolute() for output in outputs}
    replaced = {
        Path(output): set_aside(output)
        for output in outputs
        if output.kind == "directory" and Path(output).exists()
    }
    try:
        yield
    except BaseException:
        for new in created:
            if new.exists() and (new in own or holds_no_file(new)):
                remove(new)
        for old, aside in replaced.items():
            if old.exists():
                remove(old)
            aside.rename(old)
        raise
    for aside in replaced.values():
        remove(aside)
