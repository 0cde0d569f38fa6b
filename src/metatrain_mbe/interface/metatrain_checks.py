"""The checks ``mtt train`` makes before it reads data, made by ``mtt-mbe
train`` before it prepares any (which takes a minute for a large data set).

metatrain validates its options in :func:`metatrain.cli.train.train_model`:
the base options (``validate_base_options``), the architecture's name and
hyper-parameters (merged with the architecture's defaults, then
``check_architecture_options``), the device (``pick_devices``) and the
precision. :func:`check_metatrain_options` calls the same functions on the
options a user gave, so that a typo ends in one line and exit code 2 within
seconds instead of as a fault after the data sets are written.
"""

from __future__ import annotations

import copy

from ..errors import MBEInputError

__all__ = ["check_metatrain_options"]


def check_metatrain_options(options: dict, source: str) -> None:
    """Refuse options that metatrain would refuse before training.

    :param options: metatrain options as plain data (no ``mbe:`` section).
    :param source: the options file, for messages.
    :raises MBEInputError: one line naming the file and the option.
    """
    import torch
    from metatrain.utils.architectures import (
        check_architecture_options,
        find_all_architectures,
        get_default_hypers,
        import_architecture,
    )
    from metatrain.utils.devices import pick_devices
    from metatrain.utils.omegaconf import BASE_OPTIONS
    from metatrain.utils.pydantic import validate_base_options
    from omegaconf import OmegaConf

    try:
        validate_base_options(copy.deepcopy(options))
    except Exception as error:  # metatrain raises its own validation errors
        raise MBEInputError(f"{source}: {_first_problem(error)}") from error
    name = options["architecture"]["name"]
    if name not in find_all_architectures():
        raise MBEInputError(
            f"{source}: architecture.name: '{name}' is not a metatrain architecture "
            f"(installed: {', '.join(sorted(find_all_architectures()))})"
        )
    architecture = import_architecture(name)
    merged = OmegaConf.to_container(
        OmegaConf.merge(BASE_OPTIONS, {"architecture": get_default_hypers(name)}, options),
        resolve=True,
    )
    assert isinstance(merged, dict)
    try:
        check_architecture_options(name=name, options=merged["architecture"])
        pick_devices(
            architecture_devices=architecture.__model__.__supported_devices__,
            desired_device=merged["device"],
        )
    except Exception as error:  # metatrain raises its own validation errors
        raise MBEInputError(f"{source}: {_first_problem(error)}") from error
    dtype = getattr(torch, f"float{merged['base_precision']}")
    if dtype not in architecture.__model__.__supported_dtypes__:
        raise MBEInputError(
            f"{source}: base_precision: {merged['base_precision']} is not supported by {name}"
        )


def _first_problem(error: Exception) -> str:
    """The first line that says what is wrong in a metatrain error (its
    messages span many lines; pydantic's list of errors when ``str`` fails)."""
    try:
        text = str(error)
    except Exception:  # metatrain's message formatting fails on some errors
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    details = [line for line in lines if not line.endswith("occurred for the base hypers:")]
    details = [line for line in details if not line.startswith(("----", "For the doc", "http"))]
    if details:
        return " ".join(details[:2])
    cause = error.__cause__
    problems = cause.errors() if cause is not None and hasattr(cause, "errors") else []
    for problem in problems:
        return f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
    return type(error).__name__
