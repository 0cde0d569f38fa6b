"""What every sub-cluster evaluator offers: the contract the analysis relies on.

:class:`~.evaluator.ModelEvaluator` (batched calls of a metatomic model) and
:class:`~.ase_evaluator.CalculatorEvaluator` (any ase calculator, one structure
at a time) both satisfy :class:`Evaluator`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import ase
import torch

from ..expansion import SubsetPlan

__all__ = ["Evaluator"]


@runtime_checkable
class Evaluator(Protocol):
    """Sub-cluster energies (eV) and gradients (eV/Å) of parent clusters."""

    @property
    def dtype(self) -> torch.dtype:
        """Precision the energies are computed in (they are returned as float64)."""
        ...

    @property
    def cutoff(self) -> float | None:
        """Largest neighbour-list cutoff of the model (Å), None when unknown."""
        ...

    @property
    def strategy(self) -> str | None:
        """Batch layout in use (see :data:`~.evaluator.BATCH_LAYOUTS`), None when
        unbatched."""
        ...

    @property
    def batch_size(self) -> int | None:
        """Sub-clusters per call (at most), None when unbatched."""
        ...

    def evaluate(
        self, parents: list[ase.Atoms], plans: list[SubsetPlan]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """E(S) (eV) and dE(S)/dr (eV/Å) of every sub-cluster of each plan.

        :return: per parent, ``(plan.n_subsets,)`` energies (0 for the empty
            set) and ``(n_rows, 3)`` gradients in the plan's atom rows
            (:meth:`~metatrain_mbe.expansion.SubsetPlan.atom_rows`), float64
            on the CPU.
        """
        ...
