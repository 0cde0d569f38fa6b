"""Export a trained metatomic model with many-body-expansion outputs."""

from __future__ import annotations

import math
from pathlib import Path

import metatomic.torch as mta
import torch

from ..data.io import atomic_path, staged_directory
from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS
from .bonding import bond_cutoff_table
from .evaluator import load_model
from .extensions import recording_only, used_namespaces
from .harmonics import make_harmonics_differentiable
from .mbe_model import BODIES, ENERGY_BY_ORDER, MBEModel

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
    bodies: str = "atoms",
    mult: float | None = None,
    batch_size: int = -1,
) -> mta.AtomisticModel:
    """Wrap ``model`` with :class:`MBEModel` and save it to ``output``.

    :param model: exported model (``.pt``) or metatrain checkpoint (``.ckpt``).
    :param max_order: largest body order of ``mbe::energy_by_order`` (0: all).
    :param truncate: when > 0, ``energy`` becomes the k-body truncated
        expansion E_k of the model.
    :param bodies: ``"atoms"`` (every atom a body) or ``"molecules"``: the
        model splits each system into molecules by the rule of ``mtt-mbe
        fragments`` (bonded atoms: at most (1 - BOND_TOLERANCE) × ``mult`` ×
        (r_cov(i) + r_cov(j)) apart, ase's covalent radii; ions bonded to
        nothing) and expands over them; orders count molecules.
    :param mult: factor on the covalent radii (default
        :data:`~metatrain_mbe.data.fragments.DEFAULT_MULT`).
    :param batch_size: sub-clusters per call of the inner model: 0 all in one
        call, -1 (default) 64 on a CPU and all in one call on a GPU (see
        :class:`~metatrain_mbe.compute.subcluster_evaluator.SubclusterEvaluator`).
    :return: the exported (not scripted) AtomisticModel; the file holds its
        TorchScript version, and the extensions it uses (only those) are
        added to ``extensions/`` next to it.
    """
    if max_order < 0 or truncate < 0 or batch_size < -1:
        raise MBEInputError("--max-order and --truncate must be >= 0, --batch-size >= -1")
    if bodies not in BODIES:
        raise MBEInputError(f"--bodies must be one of {', '.join(BODIES)}, got '{bodies}'")
    if mult is None:
        from ..data.fragments import DEFAULT_MULT

        mult = DEFAULT_MULT
    if not (math.isfinite(mult) and mult > 0):
        raise MBEInputError(f"--mult {mult} is not a finite number > 0")
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
    bond_cutoffs = None
    if bodies == "molecules":
        try:
            bond_cutoffs = bond_cutoff_table(
                list(capabilities.atomic_types),
                mult,
                _angstrom_to(capabilities.length_unit),
            )
        except ValueError as error:
            raise MBEInputError(f"{model}: {error}") from error
    wrapper = MBEModel(
        inner.module,
        inner.requested_neighbor_lists(),
        capabilities.interaction_range,
        energy_unit,
        max_order=max_order,
        truncate=truncate,
        max_atoms=max_atoms,
        bodies=bodies,
        bond_cutoffs=bond_cutoffs,
        batch_size=batch_size,
    ).eval()

    outputs = {name: capabilities.outputs[name] for name in declared_outputs(capabilities.outputs)}
    outputs[ENERGY_BY_ORDER] = mta.ModelOutput(
        unit=energy_unit,
        sample_kind="system",
        description="per-order sums of the many-body expansion terms V(S), "
        f"properties body_order = 1..max_order, orders counted in {bodies}",
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
    molecules = bodies == "molecules"
    over = " over molecules" if molecules else ""
    if metadata.name:
        unit = "molecules" if molecules else "bodies"
        kind = f"truncated at {truncate} {unit}" if truncate else f"with MBE outputs{over}"
        name = f"{metadata.name} ({kind})"
    elif truncate:
        name = f"{truncate}-{'molecule' if molecules else 'body'} truncated"
    else:
        name = f"MBE-wrapped{over}"
    extra = dict(metadata.extra)
    extra.update(_bodies_record(bodies, mult))
    description = metadata.description.rstrip()
    note = _bodies_description(bodies, mult)
    new_metadata = mta.ModelMetadata(
        name=name,
        description=f"{description}\n\n{note}" if description else note,
        authors=metadata.authors,
        references=metadata.references,
        extra=extra,
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


def _angstrom_to(length_unit: str) -> float:
    """Factor from Å to the model's length unit (1 when the model names none)."""
    if not length_unit:
        return 1.0
    return mta.unit_conversion_factor("angstrom", length_unit)


def _bodies_record(bodies: str, mult: float) -> dict[str, str]:
    """The ``extra`` metadata entries naming the bodies of the expansion."""
    from ..data.fragments import BOND_TOLERANCE, IONS

    record = {"mbe::bodies": bodies}
    if bodies == "molecules":
        record["mbe::mult"] = repr(float(mult))
        record["mbe::bond_tolerance"] = repr(float(BOND_TOLERANCE))
        record["mbe::ions"] = " ".join(IONS)
    return record


def _bodies_description(bodies: str, mult: float) -> str:
    """The sentence of the model's description naming the bodies."""
    from ..data.fragments import BOND_TOLERANCE, IONS

    if bodies == "atoms":
        return "Many-body expansion over atoms (orders count atoms)."
    return (
        "Many-body expansion over molecules (orders count molecules): a molecule is a "
        "connected component of the atoms at most "
        f"{1 - BOND_TOLERANCE:g} x {float(mult):g} x (r_cov(i) + r_cov(j)) apart "
        f"(ase's covalent radii; {', '.join(IONS)} bonded to nothing), found in each "
        "system as `mtt-mbe fragments` does."
    )


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
