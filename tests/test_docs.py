"""The hooks of docs/conf.py that read the docstrings as reST (the build itself,
with the gallery, is the last step of scripts/test.sh)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")

CONF = Path(__file__).parents[1] / "docs" / "conf.py"


@pytest.fixture(scope="module")
def conf():
    spec = importlib.util.spec_from_file_location("docs_conf", CONF)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def escaped(conf, *lines):
    lines = list(lines)
    conf.escape_bars(None, "function", "metatrain_mbe.x", None, {}, lines)
    return lines


def test_bars_are_escaped_outside_literals(conf):
    assert escaped(conf, "the mean over |S| = m of ``|dV/dr|``, :math:`|x|`") == [
        r"the mean over \|S\| = m of ``|dV/dr|``, :math:`|x|`"
    ]


def test_doctests_and_literal_blocks_keep_their_bars(conf):
    lines = [">>> {1} | {2}", "{1, 2}", "", "Run::", "", "    a | b", "", "after |x|"]
    assert escaped(conf, *lines) == [*lines[:-1], r"after \|x\|"]


def test_relative_references_resolve_from_the_package(conf):
    lines = [":mod:`.screening` (not :mod:`metatrain_mbe.expansion.screening`), :func:`len`"]
    conf.canonical_references(None, "module", "metatrain_mbe.compute.mbe_model", None, {}, lines)
    assert lines == [
        ":py:mod:`screening <metatrain_mbe.compute.screening>` "
        "(not :mod:`metatrain_mbe.expansion.screening`), :func:`len`"
    ]
    # an object of a submodule, documented under the package that exports it
    lines = [":meth:`~.subsets.SubsetPlan.atom_rows`"]
    name = "metatrain_mbe.expansion.terms.BodyOrderTerms"
    conf.canonical_references(None, "class", name, None, {}, lines)
    assert lines == [":py:meth:`atom_rows <metatrain_mbe.expansion.SubsetPlan.atom_rows>`"]


def test_every_public_object_is_documented_once(conf):
    modules = conf.public_modules()
    assert "metatrain_mbe.expansion" in modules and "metatrain_mbe.__main__" not in modules
    places = conf.canonical_modules()
    import metatrain_mbe.expansion as expansion

    assert places[("moebius_transform", id(expansion.moebius_transform))] == (
        "metatrain_mbe.expansion"
    )
    assert places[("Cutoffs", id(expansion.Cutoffs))] == "metatrain_mbe.cutoffs"
