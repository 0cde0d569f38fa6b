"""One labelling task: a calculator on one structure, run by
:func:`~metatrain_mbe.compute.tasks.map_tasks` in local processes or on a Dask cluster.

Workers build the calculator themselves (one thread each) and return plain
numbers, so the main process alone writes to the :class:`~.store.LabelStore`,
committing every result as it arrives. A task carries the structure's numbers
and positions and its charge and spin fields (:func:`electronic_fields`:
``info["charge"]``, ``info["spin"]``, ``initial_charges``, ``initial_magmoms``),
which the rebuilt structure keeps: :class:`.PySCFCalculator` reads them, and so
do many ase calculators.

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

import ase
import numpy as np
from ase.calculators.calculator import BaseCalculator, Calculator

from ...data.io import (
    CHARGE_KEY,
    CHARGES_ARRAY,
    MAGMOMS_ARRAY,
    SPIN_KEY,
    STATE_KEYS,
    describe,
)
from ...errors import MBEInputError

__all__ = [
    "WHOLE_TOLERANCE",
    "calculator_class",
    "check_calculator",
    "compute_label",
    "electronic_fields",
    "full_settings",
    "make_calculator",
    "one_thread",
    "stated_state",
]

#: how far a total charge or 2S may be from a whole number
WHOLE_TOLERANCE = 1e-4

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
    same level of theory. A class with a ``theory_settings`` method (as
    :meth:`.PySCFCalculator.theory_settings`) then keeps the settings it names
    (those of the method in use, without where it runs).

    >>> full_settings("pyscf", {"basis": "sto-3g"})["spin_treatment"]
    'restricted'
    >>> "bond_dim" in full_settings("pyscf", {}), "bond_dim" in full_settings(
    ...     "pyscf", {"method": "dmrg"}
    ... )
    (False, True)
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
    settings = {k: v for k, v in settings.items() if k in kwargs or k not in _CALCULATOR_KEYWORDS}
    theory = getattr(cls, "theory_settings", None)
    return settings if theory is None else theory(settings)


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


def stated_state(atoms: ase.Atoms) -> tuple[int | None, int | None]:
    """The total charge (e) and 2S a structure states (None where it states none).

    By ase's and fairchem's conventions:

    - the charge: ``info["charge"]``, a whole number; else the sum of the
      per-atom ``initial_charges``;
    - 2S: ``info["spin"]`` - 1, ``info["spin"]`` being the spin multiplicity
      2S + 1 (a whole number >= 1, as fairchem's and metatomic's calculators
      read it); else the magnitude of the sum of the collinear per-atom
      ``initial_magmoms`` (μB). All-zero moments, ase's default (spin-paired),
      state nothing.

    A total given both ways must agree with the per-atom sum.

    >>> atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], charges=[1, 0])
    >>> stated_state(atoms)
    (1, None)
    >>> atoms.info["spin"] = 2
    >>> stated_state(atoms)
    (1, 1)

    :raises MBEInputError: one line naming the structure and field, for a
        value that is not a whole number, a multiplicity below 1, moments that
        are not collinear, or a total and a per-atom sum that disagree.
    """
    return _stated_charge(atoms), _stated_spin(atoms)


def _stated_charge(atoms: ase.Atoms) -> int | None:
    """The charge of :func:`stated_state`."""
    charge = None
    if CHARGE_KEY in atoms.info:
        charge = _whole(
            atoms, f"field '{CHARGE_KEY}'", atoms.info[CHARGE_KEY], "the total charge in e"
        )
    if CHARGES_ARRAY not in atoms.arrays:
        return charge
    total = float(np.sum(atoms.arrays[CHARGES_ARRAY]))
    return _agreeing(atoms, charge, CHARGE_KEY, CHARGES_ARRAY, total, "the charge")


def _stated_spin(atoms: ase.Atoms) -> int | None:
    """The 2S of :func:`stated_state`."""
    spin = None
    if SPIN_KEY in atoms.info:
        multiplicity = atoms.info[SPIN_KEY]
        spin = (
            _whole(atoms, f"field '{SPIN_KEY}'", multiplicity, "the spin multiplicity 2S + 1") - 1
        )
        if spin < 0:
            raise MBEInputError(
                f"{describe(atoms)}: field '{SPIN_KEY}'={multiplicity} is below 1; it is the "
                "spin multiplicity 2S + 1 (1 for a singlet)"
            )
    moments = atoms.arrays.get(MAGMOMS_ARRAY)
    if moments is None or not np.any(moments):
        return spin
    if moments.ndim != 1:
        raise MBEInputError(
            f"{describe(atoms)}: field '{MAGMOMS_ARRAY}' is not collinear (one moment per atom, μB)"
        )
    return _agreeing(atoms, spin, SPIN_KEY, MAGMOMS_ARRAY, abs(float(np.sum(moments))), "2S")


def _agreeing(
    atoms: ase.Atoms, stated: int | None, key: str, array: str, total: float, what: str
) -> int:
    """``total``, the whole number (``what``) the per-atom ``array`` gives,
    refused when it disagrees with ``stated``, the one ``info[key]`` gives."""
    if stated is None:
        return _whole(atoms, f"the sum of field '{array}'", total, what)
    if abs(total - stated) > WHOLE_TOLERANCE:
        raise MBEInputError(
            f"{describe(atoms)}: field '{array}' gives {what} {total:g} while field "
            f"'{key}'={atoms.info[key]} gives {stated}; give one, or make them agree"
        )
    return stated


def _whole(atoms: ase.Atoms, field: str, value, meaning: str) -> int:
    """``value`` (of ``field``) as an integer, refused unless a whole number."""
    number = isinstance(value, (int, float, np.integer, np.floating))
    number = number and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)
    if not number or abs(value - round(value)) > WHOLE_TOLERANCE:
        raise MBEInputError(f"{describe(atoms)}: {field}={value} is not a whole number ({meaning})")
    return int(round(value))


def electronic_fields(atoms: ase.Atoms) -> dict:
    """The charge and spin fields of a structure that a task carries, those
    it has: ``info["charge"]`` and ``info["spin"]`` (see :func:`stated_state`),
    and the per-atom ``initial_charges`` (e) and ``initial_magmoms`` (μB) as
    lists."""
    fields = {key: atoms.info[key] for key in STATE_KEYS if key in atoms.info}
    for name in (CHARGES_ARRAY, MAGMOMS_ARRAY):
        if name in atoms.arrays:
            fields[name] = atoms.arrays[name].tolist()
    return fields


def compute_label(task: tuple) -> tuple[str, dict]:
    """Energy (eV) and forces (eV/Å; none from a calculator without them,
    such as FCI, CCSD(T) or DMRG) of one structure, or the error.

    :param task: ``(key, numbers, positions, calculator name, kwargs)`` and,
        for a structure with charge or spin fields, those fields
        (:func:`electronic_fields`), which the structure given to the
        calculator keeps.
    """
    key, numbers, positions, name, kwargs, *extra = task
    fields = extra[0] if extra else {}
    one_thread()
    atoms = ase.Atoms(
        numbers=numbers,
        positions=positions,
        charges=fields.get(CHARGES_ARRAY),
        magmoms=fields.get(MAGMOMS_ARRAY),
    )
    atoms.info.update({info: fields[info] for info in STATE_KEYS if info in fields})
    atoms.calc = make_calculator(name, kwargs)
    with_forces = "forces" in atoms.calc.implemented_properties  # correlated: energies only
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces() if with_forces else np.zeros(0)
    except Exception as error:  # any calculator failure is recorded, not fatal
        message = " ".join(str(error).split())
        return key, {"error": f"{type(error).__name__}: {message}"}
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        return key, {"error": "non-finite energy or forces"}
    strategy = getattr(atoms.calc, "strategy", "") or ""
    result = {"energy": float(energy), "strategy": strategy}
    if with_forces:
        result["forces"] = np.asarray(forces).tolist()
    return key, result
