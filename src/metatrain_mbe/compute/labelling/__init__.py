"""Reference labels for sub-clusters: PySCF or any ase calculator, run in
parallel (local processes or Dask) into a resumable store."""

from .executor import compute_label, make_calculator, run_tasks
from .pyscf_calculator import STRATEGIES, PySCFCalculator, SCFError, spin_of
from .store import LabelStore, calculator_description, structure_key

__all__ = [
    "LabelStore",
    "PySCFCalculator",
    "SCFError",
    "STRATEGIES",
    "calculator_description",
    "compute_label",
    "make_calculator",
    "run_tasks",
    "spin_of",
    "structure_key",
]
