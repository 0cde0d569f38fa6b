"""Export a trained metatomic model with many-body-expansion outputs."""

from __future__ import annotations

from pathlib import Path

import metatomic.torch as mta
import torch

from ..data.io import atomic_path, staged_directory
from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS
from .evaluator import load_model
from .extensions import recording_only, used_namespaces
from .harmonics import make_harmonics_differentiable
from .mbe_model import ENERGY_BY_ORDER, MBEModel

__all__ = ["export_mbe_model"]

#: current output names of metatomic by the deprecated spelling it still accepts
_DEPRECATED_SPELLINGS = {
    "features": "feature",
    "non_conservative_forces": "non_conservative_force",
    "positions": "position",
    "momenta": "momentum",
    "masses": "mass",
    "velocities": "velocity",
    "charges": "charge",
}


def declared_outputs(outputs: dict) -> list[str]:
    """The output names a model declares: ``capabilities().outputs`` without the
    deprecated spellings metatomic adds beside the current ones (``features``
    beside ``feature``), which a new AtomisticModel would add again."""

    def current(name: str) -> str:
        base, _, variant = name.partition("/")
        return _DEPRECATED_SPELLINGS.get(base, base) + (f"/{variant}" if variant else "")

    return [name for name in outputs if current(name) == name or current(name) not in outputs]


def export_mbe_model(
    model: str | Path,
    output: str | Path,
    *,
    extensions: str | Path | None = None,
    max_order: int = 0,
    truncate: int = 0,
    max_atoms: int = DEFAULT_MAX_ATOMS,
) -> mta.AtomisticModel:
    """Wrap ``model`` with :class:`MBEModel` and save it to ``output``.

    :param model: exported model (``.pt``) or metatrain checkpoint (``.ckpt``).
    :param max_order: largest body order of ``mbe::energy_by_order`` (0: all).
    :param truncate: when > 0, ``energy`` becomes the k-body truncated
        expansion E_k of the model.
    :return: the exported (not scripted) AtomisticModel; the file holds its
        TorchScript version, and the extensions it uses (only those) are
        added to ``extensions/`` next to it.
    """
    if max_order < 0 or truncate < 0:
        raise MBEInputError("--max-order and --truncate must be positive")
    if Path(model).suffix == ".ckpt":
        inner = _from_checkpoint(Path(model))
    else:
        inner = load_model(model, extensions)
    make_harmonics_differentiable(inner.module)
    needed = used_namespaces(inner.module)
    capabilities = inner.capabilities()
    if "energy" not in capabilities.outputs:
        raise MBEInputError(f"{model}: the model has no 'energy' output to expand")
    energy_unit = capabilities.outputs["energy"].unit
    wrapper = MBEModel(
        inner.module,
        inner.requested_neighbor_lists(),
        capabilities.interaction_range,
        energy_unit,
        max_order=max_order,
        truncate=truncate,
        max_atoms=max_atoms,
    ).eval()

    outputs = {name: capabilities.outputs[name] for name in declared_outputs(capabilities.outputs)}
    outputs[ENERGY_BY_ORDER] = mta.ModelOutput(
        unit=energy_unit,
        sample_kind="system",
        description="per-order sums of the many-body expansion terms V(S), "
        "properties body_order = 1..max_order",
    )
    new_capabilities = mta.ModelCapabilities(
        outputs=outputs,
        atomic_types=capabilities.atomic_types,
        interaction_range=capabilities.interaction_range,
        length_unit=capabilities.length_unit,
        supported_devices=capabilities.supported_devices,
        dtype=capabilities.dtype,
    )
    metadata = inner.metadata()
    if metadata.name:
        kind = f"truncated at {truncate} bodies" if truncate else "with MBE outputs"
        name = f"{metadata.name} ({kind})"
    else:
        name = f"{truncate}-body truncated" if truncate else "MBE-wrapped"
    new_metadata = mta.ModelMetadata(
        name=name,
        description=metadata.description,
        authors=metadata.authors,
        references=metadata.references,
    )
    exported = mta.AtomisticModel(wrapper, new_metadata, new_capabilities)
    output = Path(output)
    # into the extensions folder beside the output, keeping what it holds (the
    # inner model's own extensions when both models share the folder)
    with (
        atomic_path(output) as partial,
        staged_directory(output.parent / "extensions") as collected,
        recording_only(needed),
    ):
        exported.save(partial, collect_extensions=str(collected))
    return exported


def _from_checkpoint(path: Path) -> torch.jit.ScriptModule:
    """The scripted AtomisticModel of a metatrain checkpoint, as ``mtt export``
    makes it."""
    from metatrain.utils.io import load_model as load_checkpoint

    if not path.is_file():
        raise MBEInputError(f"{path}: checkpoint not found")
    try:
        model = load_checkpoint(str(path))
    except Exception as error:  # metatrain raises many kinds for a bad checkpoint
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MBEInputError(
            f"{path}: not a metatrain checkpoint ({first}); run `mtt export` on it first"
        ) from error
    if not mta.is_atomistic_model(model):
        model = model.export()
    return torch.jit.script(model)
