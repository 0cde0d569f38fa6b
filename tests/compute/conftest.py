"""Fixtures of the compute tests: tiny untrained models (built once per session
by ``tests/conftest.py::tiny_models``) and their metatomic ase calculators."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(scope="session")
def calculators(tiny_models):
    """metatomic's ase calculator of each tiny model, ``{name: calculator}``."""
    from metatomic_ase import MetatomicCalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            name: MetatomicCalculator(
                str(path), extensions_directory=str(path.parent / "extensions")
            )
            for name, path in tiny_models.items()
        }
