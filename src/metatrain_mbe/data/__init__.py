"""Layer 2 — structures and files: the MBE keys of extended XYZ, sub-cluster
enumeration, and labelled sets grouped back per parent.
"""

from .io import (
    ATOMS_KEY,
    FRAGMENT_KEY,
    ORDER_KEY,
    PARENT_KEY,
    describe,
    fragments_of,
    get_energy,
    get_forces,
    read_structures,
    write_structures,
)
from .sets import SubclusterSet, collect_sets, parse_e1, resolve_e1
from .subclusters import (
    assign_parent_ids,
    bodies_of,
    body_pairs,
    check_cluster,
    enumerate_subclusters,
    isolated_atoms,
    parent_plan,
    parse_cutoffs,
    parse_orders,
    parse_ranges,
)

__all__ = [
    "ATOMS_KEY",
    "FRAGMENT_KEY",
    "SubclusterSet",
    "ORDER_KEY",
    "PARENT_KEY",
    "assign_parent_ids",
    "bodies_of",
    "body_pairs",
    "check_cluster",
    "collect_sets",
    "describe",
    "fragments_of",
    "enumerate_subclusters",
    "get_energy",
    "get_forces",
    "isolated_atoms",
    "parent_plan",
    "parse_cutoffs",
    "parse_e1",
    "parse_orders",
    "parse_ranges",
    "read_structures",
    "resolve_e1",
    "write_structures",
]
