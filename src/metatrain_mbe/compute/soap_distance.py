"""How far sub-clusters lie from the training structures, in SOAP space.

Each structure is summarised by the mean over its atoms of the normalised SOAP
power spectrum (featomic); its distance to the training set is the Euclidean
distance to the nearest training structure. Fragments far from every training
structure are where a model's body-ordered terms are extrapolations (the
paper's explanation of the body-order paradox).
"""

from __future__ import annotations

import ase
import numpy as np
import torch

__all__ = ["mean_soap", "nearest_distances"]


def mean_soap(frames: list[ase.Atoms], species: list[int], cutoff: float = 5.0) -> torch.Tensor:
    """``(n_frames, n_features)`` float64 mean normalised SOAP power spectrum.

    :param species: atomic numbers to describe (all frames must use only these).
    :param cutoff: SOAP cutoff radius (Å).
    """
    import featomic

    calculator = featomic.SoapPowerSpectrum(
        cutoff={"radius": cutoff, "smoothing": {"type": "ShiftedCosine", "width": 0.5}},
        density={"type": "Gaussian", "width": 0.3},
        basis={
            "type": "TensorProduct",
            "max_angular": 4,
            "radial": {"type": "Gto", "max_radial": 5},
        },
    )
    pairs = [[a, b] for a in species for b in species if a <= b]
    descriptor = calculator.compute(frames, selected_keys=None)
    descriptor = descriptor.keys_to_samples("center_type").keys_to_properties(
        _labels(["neighbor_1_type", "neighbor_2_type"], pairs)
    )
    block = descriptor.block()
    values = np.asarray(block.values, dtype=np.float64)
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    values = values / np.where(norms > 0, norms, 1.0)
    system = np.asarray(block.samples.column("system"), dtype=np.int64)
    sums = np.zeros((len(frames), values.shape[1]))
    np.add.at(sums, system, values)
    counts = np.bincount(system, minlength=len(frames))[:, None]
    return torch.from_numpy(sums / counts)


def nearest_distances(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """``(n_queries,)`` distance of each query vector to its nearest reference."""
    return torch.cdist(queries, references).min(dim=1).values


def _labels(names: list[str], values: list[list[int]]):
    import metatensor

    return metatensor.Labels(names, np.array(values, dtype=np.int32).reshape(-1, len(names)))
