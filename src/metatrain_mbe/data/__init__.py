"""Layer 2 — structures and files: the MBE keys of extended XYZ, sub-cluster
enumeration, and labelled sets grouped back per parent.
"""

from .io import (
    ATOMS_KEY,
    ORDER_KEY,
    PARENT_KEY,
    describe,
    get_energy,
    get_forces,
    read_structures,
    write_structures,
)
from .sets import SubclusterSet, collect_sets, parse_e1, resolve_e1
from .subclusters import (
    assign_parent_ids,
    check_cluster,
    enumerate_subclusters,
    isolated_atoms,
    parse_orders,
    parse_ranges,
)

__all__ = [
    "ATOMS_KEY",
    "SubclusterSet",
    "ORDER_KEY",
    "PARENT_KEY",
    "assign_parent_ids",
    "check_cluster",
    "collect_sets",
    "describe",
    "enumerate_subclusters",
    "get_energy",
    "get_forces",
    "isolated_atoms",
    "parse_e1",
    "parse_orders",
    "parse_ranges",
    "read_structures",
    "resolve_e1",
    "write_structures",
]
