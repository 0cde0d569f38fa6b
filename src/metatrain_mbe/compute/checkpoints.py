"""Reading metatrain checkpoints without running code from them.

A checkpoint (``.ckpt``) is a Python pickle written by ``torch.save``:
unpickling it with Python's own unpickler calls whatever the file names, so a
crafted file runs code as it is read. :func:`check_checkpoint` reads it with
torch's restricted unpickler (``torch.load(..., weights_only=True)``), which
builds only tensors, containers and the classes allowed to it, and refuses any
other callable before calling it. The classes allowed besides torch's own
(:data:`CHECKPOINT_CLASSES`) are those the checkpoints of metatrain's
SOAP-BPNN, PET and MACE hold, found by listing the globals of the pickles of
real checkpoints (``model.get_checkpoint()`` of tiny models and ``mtt train``
checkpoints, with their optimizer and scheduler states).
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import MBEInputError

__all__ = ["CHECKPOINT_CLASSES", "check_checkpoint"]

#: the classes, besides torch's tensors, storages and containers, that a
#: metatrain checkpoint of SOAP-BPNN, PET or MACE holds (metatrain 2026.4):
#: ``model_data["dataset_info"]`` (DatasetInfo, one TargetInfo per target) and
#: TorchBind objects (torch.ScriptObject: metatomic's ModelMetadata, metatensor's
#: TensorMap), which torch rebuilds with their C++ deserializers, no Python callable
CHECKPOINT_CLASSES = (
    "metatrain.utils.data.dataset.DatasetInfo",
    "metatrain.utils.data.target_info.TargetInfo",
    "torch.ScriptObject",
)

#: how torch's restricted unpickler names the first global it refuses
_REFUSED = re.compile(r"Unsupported global: GLOBAL (\S+) was not an allowed global")


def check_checkpoint(path: str | Path, trust: bool = False) -> dict[str, Any]:
    """The content of the checkpoint at ``path``, read without running code
    from it unless ``trust`` is true (then as metatrain reads it: the whole
    pickle).

    :raises MBEInputError: when the pickle needs a callable outside torch's and
        :data:`CHECKPOINT_CLASSES`, naming the first one, unless ``trust``.
    :raises pickle.UnpicklingError: (and whatever ``torch.load`` raises) for a
        file that is not a checkpoint.
    """
    if trust:
        return torch.load(path, weights_only=False, map_location="cpu")
    import metatomic.torch  # noqa: F401  (registers the TorchBind classes a checkpoint holds)

    with torch.serialization.safe_globals(_allowed_classes()):
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as error:
            refused = _REFUSED.search(str(error))
            if refused is None:
                raise pickle.UnpicklingError(_unpickler_reason(str(error))) from error
            name = refused.group(1) if "." in refused.group(1) else f"builtins.{refused.group(1)}"
            raise MBEInputError(
                f"{path}: the checkpoint needs classes outside metatrain's (first: {name}); "
                "pass --trust-checkpoint if you trust its origin"
            ) from error


def _allowed_classes() -> list[Any]:
    """The classes of :data:`CHECKPOINT_CLASSES`, imported."""
    classes = []
    for name in CHECKPOINT_CLASSES:
        module, _, attribute = name.rpartition(".")
        classes.append(getattr(importlib.import_module(module), attribute))
    return classes


def _unpickler_reason(message: str) -> str:
    """The reason torch's restricted unpickler gives, from its long message
    (``Unsupported operand 110`` for a file that is not a pickle)."""
    reason = message.partition("WeightsUnpickler error:")[2].strip().split("\n\n")[0]
    return " ".join(reason.split()) or message.strip().splitlines()[0]
