"""The TorchScript extensions (compiled libraries of custom operations) that a
model needs: the ones its file records, the ones its graph uses, and saving a
model that records only those."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["import_python_packages", "recorded_extensions", "recording_only", "used_namespaces"]

#: Python package of an extension library, imported before the library itself:
#: it registers what the library lacks (sphericart's autograd) and makes the
#: process load the library once, from the package
PYTHON_PACKAGES = {"sphericart_torch": "sphericart.torch", "featomic_torch": "featomic.torch"}


def recorded_extensions(path: str | Path) -> list[str]:
    """Names of the extension libraries recorded in a saved metatomic model
    (``[]`` when the file records none or is not a model archive)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entry = next((n for n in archive.namelist() if n.endswith("/extra/extensions")), None)
            if entry is None:
                return []
            return [extension["name"] for extension in json.loads(archive.read(entry))]
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError):
        return []


def import_python_packages(extensions: list[str]) -> None:
    """Import the Python package of each extension that has one and is installed."""
    for name in extensions:
        if name in PYTHON_PACKAGES:
            with contextlib.suppress(ImportError):
                importlib.import_module(PYTHON_PACKAGES[name])


def used_namespaces(module: torch.jit.ScriptModule) -> set[str]:
    """Namespaces of the custom operations and classes that ``module``'s forward
    reaches (``sphericart_torch``, ...), without TorchScript's own."""
    compiled: Any = module._c  # the TorchScript module behind the Python one
    graph = compiled._get_method("forward").graph.copy()
    torch._C._jit_pass_inline(graph)
    namespaces = set(re.findall(r"__torch__\.torch\.classes\.(\w+)\.", str(graph)))
    stack = list(graph.nodes())
    while stack:
        node = stack.pop()
        namespaces.add(node.kind().split("::")[0])
        for block in node.blocks():
            stack.extend(block.nodes())
    return namespaces - {"aten", "prim", "profiler", "onnx"}


@contextlib.contextmanager
def recording_only(namespaces: set[str]) -> Iterator[None]:
    """Within the block, metatomic's ``save`` records and collects only the
    loaded extension libraries that register one of ``namespaces`` (it records
    every library the process has loaded: SOAP-BPNN's sphericart in a PET export
    made after a SOAP-BPNN was loaded)."""
    loaded = torch.ops.loaded_libraries
    torch.ops.loaded_libraries = {path for path in loaded if _registers(path, namespaces)}
    try:
        yield
    finally:
        torch.ops.loaded_libraries = loaded


def _registers(path: str, namespaces: set[str]) -> bool:
    """Whether the library at ``path`` (``.../libsphericart_torch.so``) is the
    one of a namespace (``sphericart_torch``; ``featomic`` for ``featomic_torch``)."""
    name = os.path.basename(path).split(".")[0]
    name = name[3:] if name.startswith("lib") else name
    return name in namespaces or name.removesuffix("_torch") in namespaces
