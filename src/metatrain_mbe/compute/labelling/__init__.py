"""Reference labels for sub-clusters: PySCF or any ase calculator, run in
parallel (local processes or Dask) into a resumable store."""

from .executor import calculator_class, check_calculator, compute_label, make_calculator
from .label import LabelOutcome, label_structures
from .pyscf_calculator import STRATEGIES, PySCFCalculator, SCFError, spin_of
from .store import LabelStore, calculator_description, structure_key

__all__ = [
    "LabelOutcome",
    "LabelStore",
    "PySCFCalculator",
    "SCFError",
    "STRATEGIES",
    "calculator_class",
    "calculator_description",
    "check_calculator",
    "compute_label",
    "label_structures",
    "make_calculator",
    "spin_of",
    "structure_key",
]
