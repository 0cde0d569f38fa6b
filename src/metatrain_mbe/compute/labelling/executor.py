"""One labelling task: a calculator on one structure, run by
:func:`~metatrain_mbe.compute.tasks.map_tasks` in local processes or on a Dask cluster.

Workers build the calculator themselves (one thread each) and return plain
numbers, so the main process alone writes to the :class:`~.store.LabelStore`,
committing every result as it arrives.

:func:`check_calculator` vets a calculator before anything is computed: the
name must give an ase calculator class, and its keywords must be ones the class
accepts. A keyword is checked exactly when the class's constructor names all
it accepts (no ``**kwargs``, as :class:`.PySCFCalculator`). Most ase calculators
take ``**kwargs`` and pass them on to ase's ``Calculator``, which stores any
keyword as a parameter, or to their input files: for them a keyword missing
from the class's ``default_parameters`` (an exhaustive list for some, such as
``EMT`` or ``LennardJones``, not for others, such as ``Psi4``) is only warned
about, and without ``default_parameters`` keywords are not checked.
"""

from __future__ import annotations

import importlib
import inspect
import os
import warnings

import numpy as np
from ase.calculators.calculator import BaseCalculator, Calculator

from ...errors import MBEInputError

__all__ = [
    "calculator_class",
    "check_calculator",
    "compute_label",
    "full_settings",
    "make_calculator",
    "one_thread",
]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: the keywords of ase's ``Calculator`` constructor, which stores any other
#: keyword as a parameter
_CALCULATOR_KEYWORDS = set(inspect.signature(Calculator.__init__).parameters) - {"self", "kwargs"}


def calculator_class(name: str) -> type[BaseCalculator]:
    """The class of ``"pyscf"`` (:class:`.PySCFCalculator`) or of an ase
    calculator named ``"module:Class"``.

    :raises MBEInputError: when ``name`` gives no ase calculator class.
    """
    if name == "pyscf":
        from .pyscf_calculator import PySCFCalculator

        return PySCFCalculator
    module, _, attribute = name.partition(":")
    if not module or not attribute:
        raise MBEInputError(f"--calculator: '{name}' is neither pyscf nor module:Class")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except ImportError as error:
        raise MBEInputError(f"--calculator: '{name}': cannot import {module} ({error})") from error
    except AttributeError as error:
        raise MBEInputError(f"--calculator: '{name}': {module} has no {attribute}") from error
    if not (inspect.isclass(cls) and issubclass(cls, BaseCalculator)):
        raise MBEInputError(f"--calculator: '{name}' is not an ase calculator class")
    return cls


def check_calculator(name: str, kwargs: dict) -> None:
    """Refuse a calculator that :func:`calculator_class` refuses, and keywords
    its constructor does not accept (see the module doc).

    :raises MBEInputError: one line listing the accepted keywords.
    """
    cls = calculator_class(name)
    parameters = inspect.signature(cls.__init__).parameters.values()
    named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    named.discard("self")
    if not any(p.kind == p.VAR_KEYWORD for p in parameters):
        unknown = sorted(set(kwargs) - named)
        if unknown:
            raise MBEInputError(
                f"--calc-kwargs: {name} does not accept {', '.join(unknown)} "
                f"(accepted: {', '.join(sorted(named))})"
            )
        return
    declared = set(getattr(cls, "default_parameters", None) or {})
    unknown = sorted(set(kwargs) - named - declared - _CALCULATOR_KEYWORDS)
    if declared and unknown:
        warnings.warn(
            f"--calc-kwargs: {', '.join(unknown)} not among the default parameters of "
            f"{name} ({', '.join(sorted(declared))}); passed on unchecked",
            stacklevel=2,
        )


def full_settings(name: str, kwargs: dict) -> dict:
    """``kwargs`` with the defaults of the calculator filled in: those its
    constructor names (all of :class:`.PySCFCalculator`'s) and its
    ``default_parameters``, without ase's own bookkeeping keywords (``label``,
    ``directory``, ...). Two labels with the same full settings are at the
    same level of theory.

    >>> full_settings("pyscf", {"basis": "sto-3g"})["spin_treatment"]
    'restricted'
    """
    cls = calculator_class(name)
    parameters = inspect.signature(cls.__init__).parameters.values()
    named = {
        p.name: p.default
        for p in parameters
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty
    }
    declared = dict(getattr(cls, "default_parameters", None) or {})
    settings = {**declared, **named, **kwargs}
    return {k: v for k, v in settings.items() if k in kwargs or k not in _CALCULATOR_KEYWORDS}


def make_calculator(name: str, kwargs: dict):
    """``"pyscf"`` (:class:`.PySCFCalculator`) or any ase calculator as
    ``"module:Class"``, built with ``kwargs``."""
    return calculator_class(name)(**kwargs)


def one_thread() -> None:
    """Limit this process (and the workers it starts) to one thread."""
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = "1"
    try:
        from pyscf import lib

        lib.num_threads(1)
    except ImportError:
        pass


def compute_label(task: tuple) -> tuple[str, dict]:
    """Energy (eV) and forces (eV/Å) of one structure, or the error.

    :param task: ``(key, numbers, positions, calculator name, kwargs)``.
    """
    import ase

    key, numbers, positions, name, kwargs = task
    one_thread()
    atoms = ase.Atoms(numbers=numbers, positions=positions)
    atoms.calc = make_calculator(name, kwargs)
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
    except Exception as error:  # any calculator failure is recorded, not fatal
        message = " ".join(str(error).split())
        return key, {"error": f"{type(error).__name__}: {message}"}
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        return key, {"error": "non-finite energy or forces"}
    strategy = getattr(atoms.calc, "strategy", "") or ""
    return key, {
        "energy": float(energy),
        "forces": np.asarray(forces).tolist(),
        "strategy": strategy,
    }
