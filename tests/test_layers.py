"""The layer rule of ``docs/architecture.md``, checked on the source.

The package is five layers, expansion < data < compute < analysis < interface;
each module imports only modules of its own layer or of the layers below it.
The torch-free value modules ``metatrain_mbe.errors`` and
``metatrain_mbe.cutoffs`` (which import no layer) and the package's
``__init__`` and ``__main__`` may be imported by any module. Every import
counts: at the top of a module, inside a function, under ``if TYPE_CHECKING:``,
relative (``from .. import x`` too) or by a literal
``importlib.import_module("metatrain_mbe....")``.
"""

import ast
from collections.abc import Collection
from pathlib import Path

import pytest

PACKAGE = "metatrain_mbe"
SOURCE = Path(__file__).parents[1] / "src" / PACKAGE
LAYERS = ("expansion", "data", "compute", "analysis", "interface")
#: the value modules every layer shares, below every layer
VALUES = {f"{PACKAGE}.errors", f"{PACKAGE}.cutoffs"}
#: modules any module may import
FREE = {PACKAGE, f"{PACKAGE}.__main__", *VALUES}


def module_names(root: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def layer_of(module: str) -> str | None:
    """The layer of a module of the package: ``values`` for the free modules
    (as import targets), None for a module in no layer."""
    if module in FREE:
        return "values"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def _rank(layer: str) -> int:
    return -1 if layer == "values" else LAYERS.index(layer)


def imported_modules(
    module: str, source: str, is_package: bool, known: Collection[str]
) -> list[tuple[int, str]]:
    """(line, module) of every import of the package in ``source``, relative
    imports resolved against the package of ``module``; ``from P import x``
    imports the module ``P.x`` when there is one, else ``P``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1] + [node.module or ""]
                base = ".".join(parts).rstrip(".")
            else:
                base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((node.lineno, child if child in known else base))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return [(line, name) for line, name in found if name.split(".")[0] == PACKAGE]


def layer_violations(
    module: str, source: str, is_package: bool = False, known: Collection[str] = ()
) -> list[str]:
    """``module:line imports other (layer above own)`` for each import of a
    higher layer, or of a module in no layer, by ``module``."""
    own = layer_of(module)
    if module in FREE - VALUES:
        return []  # the package's __init__ and __main__ sit above every layer
    if own is None:
        return [f"{module}: the module is in no layer"]
    problems = []
    for line, name in imported_modules(module, source, is_package, known):
        layer = layer_of(name)
        if layer is None:
            problems.append(f"{module}:{line} imports {name} (in no layer)")
        elif _rank(layer) > _rank(own):
            problems.append(f"{module}:{line} imports {name} ({layer} above {own})")
    return problems


def test_every_module_imports_only_its_layer_and_the_ones_below():
    modules = module_names()
    assert len(modules) > 50
    assert {layer_of(name) for name in modules} >= set(LAYERS)  # the scan saw every layer
    problems = []
    for name, path in modules.items():
        problems += layer_violations(
            name, path.read_text(), path.name == "__init__.py", set(modules)
        )
    assert not problems, "imports against the layer rule:\n" + "\n".join(problems)


KNOWN = {
    PACKAGE,
    f"{PACKAGE}.errors",
    *(f"{PACKAGE}.{layer}" for layer in LAYERS),
    f"{PACKAGE}.interface.options",
    f"{PACKAGE}.compute.evaluator",
    f"{PACKAGE}.expansion.subsets",
}


@pytest.mark.parametrize(
    "module, source, is_package, reported",
    [
        pytest.param(
            "metatrain_mbe.expansion.fake",
            "import torch\n\nfrom ..interface import options\n",
            False,
            ["3 imports metatrain_mbe.interface.options (interface above expansion)"],
            id="relative",
        ),
        pytest.param(
            "metatrain_mbe.expansion.fake",
            "def f():\n    import metatrain_mbe.analysis.model\n",
            False,
            ["2 imports metatrain_mbe.analysis.model (analysis above expansion)"],
            id="in a function",
        ),
        pytest.param(
            "metatrain_mbe.data.fake",
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    from ..compute.protocol import Evaluator\n",
            False,
            ["4 imports metatrain_mbe.compute.protocol (compute above data)"],
            id="type checking",
        ),
        pytest.param(
            "metatrain_mbe.data.fake",
            "from .. import errors, interface\n",
            False,
            ["1 imports metatrain_mbe.interface (interface above data)"],
            id="from .. import",
        ),
        pytest.param(
            "metatrain_mbe.data",
            "from .io import read_structures\nfrom ..compute import evaluator\n",
            True,
            ["2 imports metatrain_mbe.compute.evaluator (compute above data)"],
            id="a package's __init__",
        ),
        pytest.param(
            "metatrain_mbe.compute.labelling.fake",
            "import importlib\n\nimportlib.import_module('metatrain_mbe.analysis')\n",
            False,
            ["3 imports metatrain_mbe.analysis (analysis above compute)"],
            id="import_module",
        ),
        pytest.param(
            "metatrain_mbe.expansion.fake",
            "from metatrain_mbe.tools import x\n",
            False,
            ["1 imports metatrain_mbe.tools (in no layer)"],
            id="no layer",
        ),
        pytest.param(
            "metatrain_mbe.expansion.fake",
            "import torch\nfrom .. import errors\nfrom ..errors import MBEInputError\n"
            "from metatrain_mbe import MBEInputError\nfrom . import subsets\n"
            "from .subsets import SubsetPlan\nfrom ..cutoffs import Cutoffs\n",
            False,
            [],
            id="allowed",
        ),
        pytest.param(
            "metatrain_mbe.cutoffs",
            "import math\n\nfrom .expansion import subsets\n",
            False,
            ["3 imports metatrain_mbe.expansion.subsets (expansion above values)"],
            id="a value module",
        ),
        pytest.param(
            "metatrain_mbe.interface.fake",
            "from ..analysis import x\nfrom ..compute import y\nfrom ..data import z\n"
            "from ..expansion import w\nfrom . import options\n",
            False,
            [],
            id="interface imports everything",
        ),
    ],
)
def test_the_checker_reports_a_planted_import(module, source, is_package, reported):
    problems = layer_violations(module, source, is_package, KNOWN)
    assert problems == [f"{module}:{problem}" for problem in reported]
