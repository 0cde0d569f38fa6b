"""What an MBE analysis expands, how it groups, and how it batches the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compute.evaluator import DEFAULT_SUBCLUSTER_BATCH_SIZE
from ..data.io import ENERGY_KEY, FORCES_KEY
from ..expansion import DEFAULT_MAX_ATOMS, Cutoffs

__all__ = ["AnalysisSettings"]


@dataclass
class AnalysisSettings:
    """What to expand and how to group it.

    :param max_order: largest sub-cluster size to use (default: complete).
    :param max_atoms: largest parent expanded completely.
    :param cutoffs: distance screening per order (Å): the family of kept
        sub-clusters (see :class:`~metatrain_mbe.expansion.Cutoffs`).
    :param group_by: parent info key to group statistics by (e.g. ``regime``).
    :param e1: isolated-atom energies (eV) by chemical symbol, overriding
        single-atom structures of the file.
    :param energy_key: energy label key (eV).
    :param forces_key: forces label key (eV/Å).
    :param subcluster_batch_size: largest number of sub-clusters per model call (on a CPU
        at most :data:`~metatrain_mbe.compute.evaluator.CPU_SUBCLUSTER_BATCH_SIZE`).
    :param batch_layout: ``"fragments"``, ``"systems"`` or ``"auto"``: the faster,
        timed by a probe on the first calls (see
        :class:`~metatrain_mbe.compute.evaluator.ModelEvaluator`).
    """

    max_order: int | None = None
    max_atoms: int = DEFAULT_MAX_ATOMS
    cutoffs: Cutoffs = field(default_factory=lambda: Cutoffs({}))
    group_by: str | None = None
    e1: dict[str, float] = field(default_factory=dict)
    energy_key: str = ENERGY_KEY
    forces_key: str = FORCES_KEY
    subcluster_batch_size: int = DEFAULT_SUBCLUSTER_BATCH_SIZE
    batch_layout: str = "auto"
