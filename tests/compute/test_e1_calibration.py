import json

import metatomic.torch  # noqa: F401  (the classes a checkpoint holds)
import pytest
import torch

from metatrain_mbe.compute.architectures import ARCHITECTURES
from metatrain_mbe.compute.e1_calibration import calibrate_e1, isolated_atom_energies
from metatrain_mbe.compute.evaluator import ModelEvaluator
from metatrain_mbe.errors import MBEInputError
from metatrain_mbe.expansion import SubsetPlan

from ..conftest import hydrogen_cluster
from ..models import tiny_model

E1_REFERENCE = -13.6


@pytest.fixture
def pet_checkpoint(tmp_path):
    """A tiny PET (random weights, composition baseline 0) as checkpoint and export."""
    model = tiny_model("pet", (1,), seed=3).eval()
    path = tmp_path / "model.pt"
    torch.save(model.get_checkpoint(), tmp_path / "model.ckpt")
    model.export().save(str(path), collect_extensions=str(tmp_path / "extensions"))
    return path


def _energy(path, atoms):
    evaluator = ModelEvaluator(path, path.parent / "extensions", strategy="systems")
    plan = SubsetPlan(len(atoms), max_order=len(atoms))
    return float(evaluator.evaluate([atoms], [plan])[0][0][-1])


def test_calibration_makes_e1_exact_and_shifts_every_atom_by_the_residual(pet_checkpoint):
    extensions = pet_checkpoint.parent / "extensions"
    cluster = hydrogen_cluster(5, seed=1)
    trained = isolated_atom_energies(pet_checkpoint, ["H"], extensions)["H"]
    before = _energy(pet_checkpoint, cluster)
    record = pet_checkpoint.parent / "data" / "e1_calibration.json"

    result = calibrate_e1(
        pet_checkpoint, extensions, record, {"H": E1_REFERENCE}, ARCHITECTURES["pet"]
    )

    shift = E1_REFERENCE - trained
    assert abs(shift) > 1.0  # a random network's E_1 is far from -13.6 eV
    assert result == {"H": {"reference": E1_REFERENCE, "trained": trained, "shift": shift}}
    assert json.loads(record.read_text()) == result
    assert isolated_atom_energies(pet_checkpoint, ["H"], extensions)["H"] == pytest.approx(
        E1_REFERENCE, abs=1e-9
    )
    # the composition baseline moved: every atom by the same shift, nothing else
    assert _energy(pet_checkpoint, cluster) == pytest.approx(before + 5 * shift, abs=1e-9)
    # the checkpoint holds the calibrated baseline too (a restart or `mtt export` keeps it)
    from metatrain.utils.io import load_model

    again = pet_checkpoint.parent / "again.pt"
    load_model(pet_checkpoint.with_suffix(".ckpt")).export().save(str(again))
    assert isolated_atom_energies(again, ["H"], extensions)["H"] == pytest.approx(
        E1_REFERENCE, abs=1e-9
    )


def test_a_checkpoint_without_a_composition_baseline_is_refused(pet_checkpoint):
    checkpoint_path = pet_checkpoint.with_suffix(".ckpt")
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    for name in ("model_state_dict", "best_model_state_dict"):
        if checkpoint.get(name):
            checkpoint[name] = {k: v for k, v in checkpoint[name].items() if "composition" not in k}
    torch.save(checkpoint, checkpoint_path)
    with pytest.raises(MBEInputError, match="no single composition baseline for the energy"):
        calibrate_e1(
            pet_checkpoint,
            pet_checkpoint.parent / "extensions",
            pet_checkpoint.parent / "e1.json",
            {"H": E1_REFERENCE},
            ARCHITECTURES["pet"],
        )
    assert not (pet_checkpoint.parent / "e1.json").exists()
