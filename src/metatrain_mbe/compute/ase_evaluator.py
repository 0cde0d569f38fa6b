"""E(S) and dE(S)/dr of every sub-cluster, from any ase calculator.

One structure at a time, so any potential with an ase calculator can be
analysed (MACE-torch, GRACE, pacemaker, ...), with the same output as
:class:`~.evaluator.ModelEvaluator`.
"""

from __future__ import annotations

import ase
import torch

from ..expansion import SubsetPlan

__all__ = ["CalculatorEvaluator"]


class CalculatorEvaluator:
    """Sub-cluster energies (eV) and gradients (eV/Å) from an ase calculator.

    :param calculator: an ase calculator giving ``energy`` and ``forces`` of
        non-periodic structures; single atoms give its own E_1.
    """

    #: evaluated in the calculator's own precision, reported as float64
    dtype = torch.float64
    #: an ase calculator does not say its range
    cutoff: float | None = None
    #: one structure at a time: no batch layout
    strategy: str | None = None
    #: nor batches
    batch_size: int | None = None

    def __init__(self, calculator):
        self.calculator = calculator

    def evaluate(
        self, parents: list[ase.Atoms], plans: list[SubsetPlan]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """See :meth:`.protocol.Evaluator.evaluate`."""
        results = []
        for parent, plan in zip(parents, plans):
            energies = torch.zeros(plan.n_subsets, dtype=torch.float64)
            _, _, start = plan.atom_rows()
            gradients = torch.zeros((int(start[-1]), 3), dtype=torch.float64)
            for row in range(1, plan.n_subsets):
                energy, forces = self.energy_and_forces(parent[plan.atoms_in(row)])
                energies[row] = energy
                gradients[start[row] : start[row + 1]] = -forces
            results.append((energies, gradients))
        return results

    def energy_and_forces(self, atoms: ase.Atoms) -> tuple[float, torch.Tensor]:
        """Energy (eV) and ``(n, 3)`` forces (eV/Å) of one finite structure."""
        atoms = atoms.copy()
        atoms.pbc = False
        atoms.calc = self.calculator
        energy = float(atoms.get_potential_energy())
        forces = torch.tensor(atoms.get_forces(), dtype=torch.float64)
        return energy, forces
