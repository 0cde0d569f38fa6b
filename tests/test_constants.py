"""Each constant is declared once: no module-level UPPER_CASE name is assigned
in two modules of the package (a second module imports it instead)."""

import ast
from collections import defaultdict

from .test_layers import SOURCE

#: names every module may have of its own
PER_MODULE = {"LOGGER"}


def constants(source: str) -> set[str]:
    """The UPPER_CASE names assigned at the top level of a module."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            elements = target.elts if isinstance(target, ast.Tuple) else [target]
            names |= {e.id for e in elements if isinstance(e, ast.Name)}
    return {name for name in names if name.lstrip("_").isupper()} - PER_MODULE


def test_no_constant_name_is_declared_in_two_modules():
    modules = defaultdict(list)
    for path in sorted(SOURCE.rglob("*.py")):
        for name in constants(path.read_text()):
            modules[name].append(str(path.relative_to(SOURCE)))
    assert {name: paths for name, paths in modules.items() if len(paths) > 1} == {}


def test_a_constant_declared_twice_is_found():
    assert constants("A_B = 1\n_C, d = 2, 3\nE: int = 4\nLOGGER = 5\n") == {"A_B", "_C", "E"}
