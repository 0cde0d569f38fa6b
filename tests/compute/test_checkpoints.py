"""A checkpoint is read with torch's restricted unpickler: a crafted one runs no
code unless ``--trust-checkpoint``, a real metatrain one exports as before."""

import pathlib

import pytest
import torch
from metatomic.torch import check_atomistic_model, load_atomistic_model

from metatrain_mbe.compute.mbe_model import ENERGY_BY_ORDER
from metatrain_mbe.interface.cli import main

from ..models import architecture_params, tiny_model


class Touch:
    """Unpickled, creates the file ``path`` (as any code a crafted pickle runs)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.fixture
def crafted(tmp_path):
    """A checkpoint shaped like metatrain's whose unpickling creates ``marker``."""
    path = tmp_path / "evil.ckpt"
    torch.save({"architecture_name": "pet", "x": Touch(tmp_path / "marker")}, path)
    return path


def test_a_crafted_checkpoint_is_refused_in_one_line_before_it_runs(crafted, capsys):
    output = crafted.parent / "out" / "m.pt"
    assert main(["export", str(crafted), "-o", str(output)]) == 2
    error = capsys.readouterr().err
    assert error == (
        f"mtt-mbe export: error: {crafted}: the checkpoint needs classes outside metatrain's "
        "(first: builtins.getattr); pass --trust-checkpoint if you trust its origin\n"
    )
    assert not (crafted.parent / "marker").exists()
    assert not output.parent.exists()


def test_a_trusted_checkpoint_is_read_whole(crafted, capsys):
    output = crafted.parent / "out" / "m.pt"
    assert main(["export", str(crafted), "-o", str(output), "--trust-checkpoint"]) == 2
    assert (crafted.parent / "marker").exists()  # the pickle ran, as `mtt export` runs it
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith(f"mtt-mbe export: error: {crafted}: not a metatrain checkpoint (")


@pytest.mark.parametrize("name", architecture_params())
def test_a_metatrain_checkpoint_exports_without_the_full_unpickler(tmp_path, monkeypatch, name):
    model = tiny_model(name)  # imports the architecture (MACE sets the variable below)
    torch.save(model.get_checkpoint(), tmp_path / "model.ckpt")
    # torch then reads every file with the restricted unpickler, even when asked not to
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    output = tmp_path / "out" / "mbe.pt"
    assert main(["export", str(tmp_path / "model.ckpt"), "-o", str(output)]) == 0
    check_atomistic_model(str(output))
    loaded = load_atomistic_model(
        str(output), extensions_directory=str(output.parent / "extensions")
    )
    assert ENERGY_BY_ORDER in loaded.capabilities().outputs
