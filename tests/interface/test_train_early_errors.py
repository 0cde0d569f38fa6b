"""``mtt-mbe train`` checks everything a user typed before it reads any data:
metatrain's own option checks, the overrides, the restart checkpoint; a
training that fails leaves nothing it created."""

import time

import pytest

from metatrain_mbe.interface.cli import main

from .conftest import train_options, write_yaml
from .test_hostile import snapshot

# (override, what the one line says)
EARLY = [
    ("architecture.name=nosuch_arch", "architecture.name: 'nosuch_arch' is not a metatrain"),
    ("=0.5", "-r =0.5: not key=value with a dotted key"),
    ("architecture..name=pet", "-r architecture..name=pet: not key=value"),
    ("device=cuda", "Requested 'cuda' device, but cuda is not available"),
    ("architecture.model.d_pett=3", "pet architecture options"),
    ("base_precision=16", "base_precision: 16 is not supported by pet"),
]


@pytest.mark.parametrize("override, message", EARLY, ids=[o for o, _ in EARLY])
def test_a_bad_option_is_refused_before_the_data_are_read(
    hydrogen_files, capsys, override, message
):
    if override == "device=cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    # a training file that cannot be read: the option must be refused before it
    (hydrogen_files / "parents.xyz").write_text("garbage\n")
    options = write_yaml(hydrogen_files / "o.yaml", train_options())
    before = snapshot(hydrogen_files)
    start = time.perf_counter()
    assert main(["train", options, "-o", "out/m.pt", "-r", override]) == 2
    assert time.perf_counter() - start < 30
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert snapshot(hydrogen_files) == before


def test_restart_from_an_exported_model_is_refused_at_once(hydrogen_files, capsys, tiny_models):
    options = write_yaml(hydrogen_files / "o.yaml", train_options())
    before = snapshot(hydrogen_files)
    assert main(["train", options, "-o", "out/m.pt", "--restart", str(tiny_models["pet"])]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert "not a metatrain checkpoint (an exported model?" in error
    assert snapshot(hydrogen_files) == before


def test_a_training_that_fails_leaves_nothing_it_created(hydrogen_files, capsys, monkeypatch):
    import metatrain.cli.train

    def fail(*args, **kwargs):
        raise RuntimeError("metatrain failed half-way")

    monkeypatch.setattr(metatrain.cli.train, "train_model", fail)
    options = write_yaml(hydrogen_files / "o.yaml", train_options())
    before = snapshot(hydrogen_files)
    assert main(["train", options, "-o", "out/m.pt"]) == 1
    assert "metatrain failed half-way" in capsys.readouterr().err
    after = snapshot(hydrogen_files)
    assert not [
        path for path in after if path not in before and "outputs" not in path.split("/")[:1]
    ]
    assert not (hydrogen_files / "outputs").exists() or not list(
        (hydrogen_files / "outputs").rglob("*.log")
    )
