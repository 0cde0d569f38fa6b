"""The last step of ``mbe.fix_e1`` for architectures whose network keeps a
one-body term of its own (PET): shift the composition baseline so that the
trained model's isolated-atom energy equals the reference E_1 exactly.

PET's node heads have biases that no setting removes, so the energy of a lone
atom is E_1 (metatrain's ``atomic_baseline``) plus whatever the network makes of
an atom without neighbours. Training on the labelled isolated atoms
(``train_isolated.xyz``) keeps that residual δ small (a few meV, up to about
20 meV over the runs measured), but not below a fixed bound. After training,
:func:`calibrate_e1` measures the trained model's E_1 per species, subtracts δ
from the composition weights in the checkpoint and exports the model again
with metatrain. Every prediction of a structure of n_Z atoms of species Z
moves by -sum_Z n_Z δ_Z; the Ṽ^(m) of the model then use the reference E_1, as
SOAP-BPNN's and MACE's do by construction.

What it did is kept next to the split, in ``<stem>_data/e1_calibration.json``:
per symbol the reference E_1, the trained model's E_1 before the shift and the
shift (all eV).
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import ase
import torch

from ..data.io import atomic_path, naming_path
from ..errors import MBEInputError
from ..expansion import SubsetPlan
from .architectures import Architecture
from .export import saving_through_python

__all__ = ["CALIBRATION_FILE", "CALIBRATION_TOLERANCE", "calibrate_e1", "isolated_atom_energies"]

#: file of the run's data directory recording the calibration
CALIBRATION_FILE = "e1_calibration.json"

#: largest E_1 error (eV) left after the calibration: round-off (float32 models
#: round E_1 of about 10 eV to 1e-6 eV), far below the 10 meV the report warns at
CALIBRATION_TOLERANCE = 1e-5


def isolated_atom_energies(
    model: str | Path, symbols: list[str], extensions: str | Path | None = None
) -> dict[str, float]:
    """The energy (eV) an exported model predicts for each isolated atom."""
    from .evaluator import ModelEvaluator

    evaluator = ModelEvaluator(model, extensions, strategy="systems")
    atoms = [ase.Atoms(symbol, positions=[[0.0, 0.0, 0.0]]) for symbol in symbols]
    results = evaluator.evaluate(atoms, [SubsetPlan(1) for _ in atoms])
    return {symbol: float(energies[1]) for symbol, (energies, _) in zip(symbols, results)}


def calibrate_e1(
    model: Path,
    extensions: Path,
    record: Path,
    reference: dict[str, float],
    architecture: Architecture,
) -> dict[str, dict[str, float]]:
    """Shift the composition baseline of a trained metatrain model so that its
    isolated-atom energies equal ``reference``; rewrite its checkpoint and
    exported model.

    :param model: the exported model (``.pt``); its checkpoint is the ``.ckpt``
        next to it.
    :param extensions: directory of compiled extensions of the export.
    :param record: where the calibration is recorded (JSON).
    :param reference: reference E_1 (eV) by symbol of every species of the model.
    :param architecture: the model's architecture (where its composition
        weights are in the checkpoint).
    :return: per symbol ``{"reference", "trained", "shift"}`` in eV.
    """
    import metatensor.torch as mts
    import metatomic.torch  # noqa: F401  (registers the classes a checkpoint holds)
    from metatrain.cli.export import export_model

    symbols = sorted(reference)
    trained = isolated_atom_energies(model, symbols, extensions)
    shifts = {symbol: reference[symbol] - trained[symbol] for symbol in symbols}
    checkpoint_path = model.with_suffix(".ckpt")
    checkpoint = torch.load(checkpoint_path, weights_only=False, map_location="cpu")
    by_number = {ase.data.atomic_numbers[symbol]: shift for symbol, shift in shifts.items()}
    for name in ("model_state_dict", "best_model_state_dict"):
        state = checkpoint.get(name)
        if state is None:
            continue
        keys = [key for key in state if key.endswith(architecture.composition_buffer)]
        if len(keys) != 1:
            raise MBEInputError(
                f"{checkpoint_path}: {name}: no single composition baseline for the energy "
                f"(found {keys}); mbe.fix_e1 cannot calibrate E_1 of this architecture"
            )
        state[keys[0]] = _shifted(mts.load_buffer(state[keys[0]]), by_number)
    # the checkpoint is replaced only once the model exported from it is in place;
    # both written by Python (a full disk raises OSError: see saving_through_python)
    try:
        with atomic_path(checkpoint_path) as checkpoint_tmp, saving_through_python():
            buffer = io.BytesIO()
            torch.save(checkpoint, buffer)
            Path(checkpoint_tmp).write_bytes(buffer.getbuffer())
            with atomic_path(model) as tmp:  # as `mtt export` does, extensions included
                export_model(checkpoint_tmp, tmp, extensions=str(extensions))
    except OSError as error:
        raise naming_path(
            error, model, "writing the calibrated model and its checkpoint"
        ) from error
    calibrated = isolated_atom_energies(model, symbols, extensions)
    for symbol in symbols:
        left = calibrated[symbol] - reference[symbol]
        if abs(left) > CALIBRATION_TOLERANCE:
            raise RuntimeError(
                f"{model}: mbe.fix_e1: E_1({symbol}) is still {1000 * left:+.3f} meV off the "
                "reference after the shift of the composition baseline"
            )
        logging.info(
            f"mtt-mbe: fix_e1: trained E_1({symbol}) was {1000 * -shifts[symbol]:+.2f} meV off "
            f"the reference; composition baseline shifted by {1000 * shifts[symbol]:+.2f} meV"
        )
    result = {
        s: {"reference": reference[s], "trained": trained[s], "shift": shifts[s]} for s in symbols
    }
    with atomic_path(record) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1) + "\n")
    return result


def _shifted(weights, by_number: dict[int, float]):
    """The composition weights (one row per ``center_type``) plus the shifts, as a buffer."""
    import metatensor.torch as mts
    from metatensor.torch import TensorBlock, TensorMap

    block = weights.block()
    values = block.values.clone()
    for row, (number,) in enumerate(block.samples.values.tolist()):
        values[row] += by_number.get(number, 0.0)
    shifted = TensorMap(
        weights.keys,
        [TensorBlock(values, block.samples, block.components, block.properties)],
    )
    return mts.save_buffer(mts.make_contiguous(shifted))
