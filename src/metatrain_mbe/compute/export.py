"""Export a trained metatomic model with many-body-expansion outputs."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import metatomic.torch as mta
import torch

from .. import __version__
from ..cutoffs import NEEDS_AN_ORDER, Cutoffs
from ..data.io import atomic_path, naming_path, staged_directory
from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS
from .bonding import bond_cutoff_table
from .checkpoints import check_checkpoint
from .evaluator import load_model
from .extensions import recording_only, used_namespaces
from .harmonics import make_harmonics_differentiable
from .mbe_model import BODIES, ENERGY_BY_ORDER, MBEModel, variant_output

__all__ = ["REFERENCES", "export_mbe_model", "saving_through_python"]

#: what an exported MBE model cites, in ``ModelMetadata.references["implementation"]``
REFERENCES = (
    "S. Chong et al., J. Chem. Phys. 164, 064121 (2026), doi:10.1063/5.0303302, "
    "arXiv:2509.14146 (the body-order paradox of machine-learning potentials)",
    f"metatrain-mbe {__version__}: many-body expansion tools for metatrain models",
)

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
    variants: Sequence[int] = (),
    max_atoms: int = DEFAULT_MAX_ATOMS,
    bodies: str = "atoms",
    mult: float | None = None,
    batch_size: int = -1,
    cutoff: str | Cutoffs | None = None,
    trust_checkpoint: bool = False,
    metadata: str | Path | None = None,
) -> mta.AtomisticModel:
    """Wrap ``model`` with :class:`MBEModel` and save it to ``output``.

    :param model: exported model (``.pt``) or metatrain checkpoint (``.ckpt``).
    :param max_order: largest body order of ``mbe::energy_by_order`` (0: all).
    :param truncate: when > 0, ``energy`` itself becomes the k-body truncated
        expansion E_k of the model (for an engine that cannot select an
        output variant; ``variants`` keeps the complete energy beside E_k).
    :param variants: body orders K: the model gets one energy variant
        ``energy/mbe_K`` per K
        (:func:`~metatrain_mbe.compute.mbe_model.variant_output`), the K-body
        truncated expansion E_K in the energy unit (eV for metatrain models),
        with forces by autograd, computed only when an engine requests it;
        ``energy`` stays the model's.
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
    :param cutoff: distance screening of the sub-clusters (Å), as
        ``--cutoff`` (:meth:`Cutoffs.parse <metatrain_mbe.cutoffs.Cutoffs.parse>`:
        ``"3.5"`` or ``"3:8,4:6"``): a sub-cluster of m bodies is kept when
        every two of its bodies are within R_m (molecules: their closest
        atoms). Needs ``truncate``, ``variants`` or ``max_order``; screens
        every output; ``mbe::energy_by_order`` then stops at ``max_order``, or
        at the largest of ``truncate`` and ``variants`` when ``max_order`` is 0.
    :param trust_checkpoint: load a checkpoint ``model`` whatever classes its
        pickle needs (:func:`~metatrain_mbe.compute.checkpoints.check_checkpoint`).
    :param metadata: a YAML file of ``ModelMetadata`` fields (``name``,
        ``description``, ``authors``, ``references``, ...) appended to the
        model's, as ``mtt export --metadata`` does. The model cites
        :data:`REFERENCES` whatever it holds.
    :return: the exported (not scripted) AtomisticModel; the file holds its
        TorchScript version, and the extensions it uses (only those) are
        added to ``extensions/`` next to it.
    :raises OSError: when the file or its extensions cannot be written (a full
        disk), naming ``output`` (:func:`naming_path`); nothing is left behind.
    """
    if max_order < 0 or truncate < 0 or batch_size < -1:
        raise MBEInputError("--max-order and --truncate must be >= 0, --batch-size >= -1")
    variants = sorted(set(variants))
    if any(k < 1 for k in variants):
        raise MBEInputError(f"--variants: body orders must be >= 1, got {variants[0]}")
    if bodies not in BODIES:
        raise MBEInputError(f"--bodies must be one of {', '.join(BODIES)}, got '{bodies}'")
    try:
        cutoffs = cutoff if isinstance(cutoff, Cutoffs) else Cutoffs.parse(cutoff)
    except ValueError as error:
        raise MBEInputError(f"--cutoff: {error}") from None
    if cutoffs and not (truncate or max_order or variants):
        raise MBEInputError(NEEDS_AN_ORDER)
    if mult is None:
        from ..data.fragments import DEFAULT_MULT

        mult = DEFAULT_MULT
    if not (math.isfinite(mult) and mult > 0):
        raise MBEInputError(f"--mult {mult} is not a finite number > 0")
    if Path(model).suffix == ".ckpt":
        inner = _from_checkpoint(Path(model), trust_checkpoint)
    else:
        inner = load_model(model, extensions)
    make_harmonics_differentiable(inner.module)
    needed = used_namespaces(inner.module)
    capabilities = inner.capabilities()
    if "energy" not in capabilities.outputs:
        raise MBEInputError(f"{model}: the model has no 'energy' output to expand")
    energy_unit = capabilities.outputs["energy"].unit
    for name in map(variant_output, variants):
        if name in capabilities.outputs:
            raise MBEInputError(f"{model}: the model already has an output '{name}'")
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
        cutoffs=_cutoff_list(
            cutoffs, max(truncate, max_order, *variants), capabilities.length_unit
        ),
        variants=variants,
    ).eval()

    outputs = {name: capabilities.outputs[name] for name in declared_outputs(capabilities.outputs)}
    screened = " over the sub-clusters kept by the cutoffs" if cutoffs else ""
    energy = capabilities.outputs["energy"]
    outputs.update(_energy_outputs(energy, truncate, variants, bodies, cutoffs))
    outputs[ENERGY_BY_ORDER] = mta.ModelOutput(
        unit=energy_unit,
        sample_kind="system",
        description=f"per-order sums of the many-body expansion terms V(S){screened}, "
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
    own = inner.metadata()
    molecules = bodies == "molecules"
    over = " over molecules" if molecules else ""
    screening = f", screened within {_cutoffs_text(cutoffs)} Å" if cutoffs else ""
    listed = ", ".join(variant_output(k).partition("/")[2] for k in variants)
    with_variants = f", energy variants {listed}" if variants else ""
    if own.name:
        unit = "molecules" if molecules else "bodies"
        kind = f"truncated at {truncate} {unit}" if truncate else f"with MBE outputs{over}"
        name = f"{own.name} ({kind}{with_variants}{screening})"
    elif truncate:
        body = "molecule" if molecules else "body"
        name = f"{truncate}-{body} truncated{with_variants}{screening}"
    else:
        name = f"MBE-wrapped{over}{with_variants}{screening}"
    extra = dict(own.extra)
    extra.update(_bodies_record(bodies, mult))
    if cutoffs:
        extra["mbe::cutoffs"] = _cutoffs_text(cutoffs)
    description = own.description.rstrip()
    note = _bodies_description(bodies, mult)
    if variants:
        note = (
            f"{note} Energy variants {listed}: the expansion truncated at K {bodies}, "
            "computed only when requested."
        )
    if cutoffs:
        note = f"{note} {_cutoffs_description(cutoffs, bodies)}"
    new_metadata = _with_user_metadata(
        mta.ModelMetadata(
            name=name,
            description=f"{description}\n\n{note}" if description else note,
            authors=own.authors,
            references=_citing(dict(own.references)),
            extra=extra,
        ),
        metadata,
    )
    exported = mta.AtomisticModel(wrapper, new_metadata, new_capabilities)
    output = Path(output)
    # into the extensions folder beside the output, keeping what it holds (the
    # inner model's own extensions when both models share the folder)
    try:
        with (
            atomic_path(output) as partial,
            staged_directory(output.parent / "extensions") as collected,
            recording_only(needed),
            saving_through_python(),
        ):
            exported.save(partial, collect_extensions=str(collected))
    except OSError as error:
        raise naming_path(error, output, "writing the exported model") from error
    return exported


@contextlib.contextmanager
def saving_through_python() -> Iterator[None]:
    """Within the block, ``torch.jit.save`` to a path (as metatomic's and
    metatrain's ``save`` call it) serializes the module in memory and writes
    the bytes with Python's file I/O, so that a failed write (a full disk)
    raises OSError. torch's own file writer finds the failure only when it
    closes the archive, in a C++ destructor, and the process aborts
    (``terminate called after throwing an instance of 'c10::Error'``)."""
    save = torch.jit.save

    def through_python(m, f, _extra_files=None):
        if isinstance(f, (str, os.PathLike)):
            with open(f, "wb") as stream:  # torch.jit.save of a stream: bytes, then write
                save(m, stream, _extra_files=_extra_files)
        else:
            save(m, f, _extra_files=_extra_files)

    torch.jit.save = through_python
    try:
        yield
    finally:
        torch.jit.save = save


def _citing(references: dict[str, list[str]]) -> dict[str, list[str]]:
    """``references`` with :data:`REFERENCES` among the ``implementation`` ones."""
    implementation = list(references.get("implementation", []))
    references["implementation"] = implementation + [
        r for r in REFERENCES if r not in implementation
    ]
    return references


def _with_user_metadata(metadata: mta.ModelMetadata, path: str | Path | None) -> mta.ModelMetadata:
    """``metadata`` with the fields of the YAML file ``path`` appended
    (metatrain's ``merge_metadata``: lists extended, strings replaced)."""
    if path is None:
        return metadata
    from metatrain.utils.metadata import merge_metadata
    from omegaconf import OmegaConf

    try:
        fields = OmegaConf.to_container(OmegaConf.load(path))
        if not isinstance(fields, dict):
            raise ValueError("not a mapping")
        user = mta.ModelMetadata(**{str(key): value for key, value in fields.items()})
    except Exception as error:  # omegaconf, yaml and ModelMetadata raise many types
        reason = " ".join(str(error).split()) or type(error).__name__
        raise MBEInputError(f"{path}: not a model metadata file ({reason})") from error
    return merge_metadata(metadata, user)


def _energy_outputs(
    energy: mta.ModelOutput,
    truncate: int,
    variants: list[int],
    bodies: str,
    cutoffs: Cutoffs,
) -> dict[str, mta.ModelOutput]:
    """``energy`` (described: metatomic asks a description of every output of a
    quantity with variants) and its variants ``energy/mbe_K``, in the inner
    model's energy unit and sample kind."""
    screened = f", sub-clusters screened within {_cutoffs_text(cutoffs)} Å" if cutoffs else ""
    unit = energy.unit or "the model's energy unit"

    def truncated(order: int) -> str:
        return (
            f"many-body expansion truncated at {order} {bodies}: E_{order}, the sum of V(S) "
            f"over the sub-clusters of at most {order} {bodies}{screened} ({unit})"
        )

    if truncate:
        description = f"{truncated(truncate)}, in place of the model's own energy"
    else:
        description = energy.description or f"the model's energy, every body order ({unit})"
    outputs = {
        "energy": mta.ModelOutput(
            unit=energy.unit,
            sample_kind=energy.sample_kind,
            explicit_gradients=energy.explicit_gradients,
            description=description,
        )
    }
    for order in variants:
        outputs[variant_output(order)] = mta.ModelOutput(
            unit=energy.unit, sample_kind=energy.sample_kind, description=truncated(order)
        )
    return outputs


def _angstrom_to(length_unit: str) -> float:
    """Factor from Å to the model's length unit (1 when the model names none)."""
    if not length_unit:
        return 1.0
    return mta.unit_conversion_factor("angstrom", length_unit)


def _cutoff_list(cutoffs: Cutoffs, depth: int, length_unit: str) -> list[float]:
    """R_m of the orders m = 1 .. ``depth`` in the model's length unit (inf for
    the orders not screened), for :class:`MBEModel`; empty without cutoffs."""
    if not cutoffs:
        return []
    scale = _angstrom_to(length_unit)
    return [cutoffs.at(m) * scale for m in range(1, max(depth, 2) + 1)]


def _cutoffs_text(cutoffs: Cutoffs) -> str:
    """The cutoffs as ``--cutoff`` takes them (Å): ``3`` or ``3:8,4:6``."""
    if list(cutoffs.by_order) == [2]:
        return f"{cutoffs.by_order[2]:g}"
    return ",".join(f"{m}:{r:g}" for m, r in cutoffs.by_order.items())


def _cutoffs_description(cutoffs: Cutoffs, bodies: str) -> str:
    """The sentence of the model's description stating the screening."""
    orders = list(cutoffs.by_order)
    parts = []
    for k, (m, r) in enumerate(cutoffs.by_order.items()):
        upto = orders[k + 1] if k + 1 < len(orders) else None
        if upto is None:
            parts.append(f"R_m = {r:g} Å for m >= {m}")
        elif upto == m + 1:
            parts.append(f"R_{m} = {r:g} Å")
        else:
            parts.append(f"R_m = {r:g} Å for {m} <= m < {upto}")
    below = f"; orders below {orders[0]} are not screened" if orders[0] > 2 else ""
    apart = " (their closest atoms)" if bodies == "molecules" else ""
    return (
        f"Sub-clusters screened by distance (--cutoff {_cutoffs_text(cutoffs)}): a "
        f"sub-cluster of m {bodies} is kept when every two of its {bodies}{apart} are "
        f"within R_m: "
        f"{', '.join(parts)}{below}. The outputs sum V(S) over the kept sub-clusters only."
    )


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


def _from_checkpoint(path: Path, trust: bool) -> torch.jit.ScriptModule:
    """The scripted AtomisticModel of a metatrain checkpoint, as ``mtt export``
    makes it; the checkpoint is read by :func:`check_checkpoint`."""
    from metatrain.utils.io import model_from_checkpoint

    if not path.is_file():
        raise MBEInputError(f"{path}: checkpoint not found")
    try:
        model = model_from_checkpoint(check_checkpoint(path, trust), context="export")
    except MBEInputError:
        raise
    except Exception as error:  # torch and metatrain raise many kinds for a bad checkpoint
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MBEInputError(
            f"{path}: not a metatrain checkpoint ({first}); run `mtt export` on it first"
        ) from error
    if not mta.is_atomistic_model(model):
        model = model.export()
    return torch.jit.script(model)
