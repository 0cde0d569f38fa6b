"""Small real models for tests: metatrain architectures with random weights,
and a pair potential written as a metatomic model."""

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import (
    AtomisticModel,
    ModelCapabilities,
    ModelMetadata,
    ModelOutput,
    NeighborListOptions,
    System,
)

ARCHITECTURES = ["soap_bpnn", "pet", "experimental.mace"]
#: the architecture of the quick loop (``pytest -m "not slow"``)
QUICK_ARCHITECTURE = "pet"
CUTOFF = 5.5


def architecture_params() -> list:
    """:data:`ARCHITECTURES` as pytest parameters, all but
    :data:`QUICK_ARCHITECTURE` marked slow."""
    return [
        name if name == QUICK_ARCHITECTURE else pytest.param(name, marks=pytest.mark.slow)
        for name in ARCHITECTURES
    ]


class LazyModels(Mapping):
    """``{architecture: make(architecture)}``, each made on first use and kept."""

    def __init__(self, make: Callable[[str], Any]):
        self._make = make
        self._made: Dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in ARCHITECTURES:
            raise KeyError(name)
        if name not in self._made:
            self._made[name] = self._make(name)
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(ARCHITECTURES)

    def __len__(self) -> int:
        return len(ARCHITECTURES)


def tiny_hypers(name: str) -> dict:
    """Default metatrain hypers of ``name``, shrunk to a model that runs in ms."""
    from metatrain.utils.architectures import get_default_hypers

    hypers = get_default_hypers(name)["model"]
    if name == "pet":
        hypers.update(
            cutoff=CUTOFF,
            d_pet=16,
            d_head=16,
            d_node=16,
            d_feedforward=16,
            num_heads=2,
            num_attention_layers=1,
            num_gnn_layers=2,
        )
    elif name == "soap_bpnn":
        hypers["soap"].update(max_angular=2, max_radial=3, cutoff={"radius": CUTOFF, "width": 0.5})
        hypers["bpnn"].update(num_neurons_per_layer=8)
    else:
        hypers.update(
            r_max=CUTOFF,
            hidden_irreps="8x0e + 8x1o",
            max_ell=1,
            num_interactions=2,
            radial_MLP=[8],
            correlation=2,
        )
    return hypers


def tiny_model(name: str, atomic_types: tuple[int, ...] = (1,), seed: int = 0):
    """An untrained float64 metatrain model (:func:`tiny_hypers`) for
    ``atomic_types`` (hydrogen by default) with an energy target."""
    from metatrain.utils.architectures import import_architecture
    from metatrain.utils.data import DatasetInfo
    from metatrain.utils.data.target_info import get_energy_target_info
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    target = get_energy_target_info(
        "energy",
        OmegaConf.create(
            {
                "quantity": "energy",
                "unit": "eV",
                "type": "scalar",
                "per_atom": False,
                "num_subtargets": 1,
                "description": "",
            }
        ),
        add_position_gradients=True,
    )
    info = DatasetInfo(
        length_unit="angstrom", atomic_types=list(atomic_types), targets={"energy": target}
    )
    return import_architecture(name).__model__(tiny_hypers(name), info).to(torch.float64)


def export_tiny_model(
    name: str, directory: Path, seed: int = 0, atomic_types: tuple[int, ...] = (1,)
) -> Path:
    """Save :func:`tiny_model` as ``directory/NAME.pt``, extensions beside it."""
    path = directory / f"{name}.pt"
    model = tiny_model(name, atomic_types, seed)
    model.eval().export().save(str(path), collect_extensions=str(directory / "extensions"))
    return path


class PairPotential(torch.nn.Module):
    """A Morse pair potential: E = Σ_{i<j} D (1 - exp(-a (r - r0)))^2 - D, per atom
    half of each pair. Body order exactly 2, so V(S) = 0 for |S| >= 3."""

    def __init__(self, cutoff: float = CUTOFF):
        super().__init__()
        self.options = NeighborListOptions(cutoff=cutoff, full_list=True, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.options]

    def forward(
        self,
        systems: List[System],
        outputs: Dict[str, ModelOutput],
        selected_atoms: Optional[Labels] = None,
    ) -> Dict[str, TensorMap]:
        per_atom = outputs["energy"].sample_kind == "atom"
        values: List[torch.Tensor] = []
        samples: List[torch.Tensor] = []
        for k, system in enumerate(systems):
            neighbors = system.get_neighbor_list(self.options)
            r = torch.linalg.vector_norm(neighbors.values.reshape(-1, 3), dim=1)
            pair = 0.5 * ((1 - torch.exp(-1.5 * (r - 0.9))) ** 2 - 1.0) * 4.0
            first = neighbors.samples.column("first_atom").to(torch.long)
            energy = torch.zeros(len(system), dtype=r.dtype).index_add(0, first, pair)
            atoms = torch.arange(len(system), dtype=torch.int32)
            if per_atom:
                values.append(energy)
                samples.append(torch.stack([torch.full_like(atoms, k), atoms], dim=1))
            else:
                values.append(energy.sum().reshape(1))
                samples.append(torch.tensor([[k]], dtype=torch.int32))
        names = ["system", "atom"] if per_atom else ["system"]
        block = TensorBlock(
            values=torch.cat(values).reshape(-1, 1),
            samples=Labels(names, torch.cat(samples)),
            components=[],
            properties=Labels(["energy"], torch.tensor([[0]])),
        )
        return {"energy": TensorMap(Labels(["_"], torch.tensor([[0]])), [block])}


def export_pair_potential(directory: Path) -> Path:
    """Save :class:`PairPotential` as a metatomic model (float64, eV, Å)."""
    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="system")},
        atomic_types=[1],
        interaction_range=CUTOFF,
        length_unit="angstrom",
        supported_devices=["cpu"],
        dtype="float64",
    )
    path = directory / "pair.pt"
    AtomisticModel(PairPotential().eval(), ModelMetadata(name="Morse pair"), capabilities).save(
        str(path)
    )
    return path
