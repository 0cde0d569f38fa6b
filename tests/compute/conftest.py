"""Fixtures of the compute tests: tiny untrained models (built once per session
by ``tests/conftest.py::tiny_models``) and their metatomic ase calculators."""

from __future__ import annotations

import warnings

import pytest


@pytest.fixture(scope="session")
def calculators(tiny_models):
    """metatomic's ase calculator of each tiny model, ``{name: calculator}``,
    each made when first used."""
    from metatomic_ase import MetatomicCalculator

    from ..models import LazyModels

    def make(name):
        path = tiny_models[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return MetatomicCalculator(
                str(path), extensions_directory=str(path.parent / "extensions")
            )

    return LazyModels(make)
