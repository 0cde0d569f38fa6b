"""Layer 2 — structures and files: the MBE keys of extended XYZ, sub-cluster
enumeration, and labelled sets grouped back per parent.

The names below are imported from their modules when first used, so that
reading a file (:mod:`.io`: ase and numpy) does not load torch, which the sets
and sub-cluster plans need: a bad input file is reported in about a second.
"""

import importlib

#: the module of each name this package exports
_MODULES = {
    **dict.fromkeys(
        [
            "ATOMS_KEY",
            "FRAGMENT_KEY",
            "ORDER_KEY",
            "PARENT_KEY",
            "check_cluster",
            "describe",
            "fragments_of",
            "get_energy",
            "get_forces",
            "read_structures",
            "write_structures",
        ],
        "io",
    ),
    **dict.fromkeys(["SubclusterSet", "collect_sets", "parse_e1", "resolve_e1"], "sets"),
    **dict.fromkeys(
        [
            "assign_parent_ids",
            "bodies_of",
            "body_pairs",
            "enumerate_subclusters",
            "isolated_atoms",
            "parent_plan",
            "parse_cutoffs",
            "parse_orders",
            "parse_ranges",
        ],
        "subclusters",
    ),
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return __all__
