"""The chemiscope view of an analysis: one structure per parent, per-order
properties equal to the report's, m-body forces as arrows, the citation.

Pair potentials make the arrows checkable: for Lennard-Jones (atoms) and TIP3P
(rigid molecules, pair-additive between them) the 2-body forces are the whole
forces and every m-body force of m >= 3 vanishes; for EMT (many-body) the
m-body forces add up to the whole forces of the complete expansion.
"""

import gzip
import json
import math
import sys

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.tip3p import TIP3P

from metatrain_mbe.analysis import AnalysisSettings, model_results, parent_plans
from metatrain_mbe.analysis.model import make_evaluator
from metatrain_mbe.data import SubclusterSet, assign_parent_ids
from metatrain_mbe.interface.model_analysis import analyze_model
from metatrain_mbe.interface.report import figures
from metatrain_mbe.interface.report.chemiscope_view import (
    ARROW_DECIMALS,
    ARROW_LENGTH,
    chemiscope_input,
    m_body_forces,
    write_chemiscope,
)

from ..analysis.test_fragment_report import water_tetramers
from ..conftest import random_cluster

pytest.importorskip("chemiscope")

#: what an arrow component may be off by (Å): the file rounds them
ROUNDING = 0.6 * 10.0**-ARROW_DECIMALS


def lennard_jones():
    """The model: the labels' Lennard-Jones potential without their E_1."""
    return LennardJones(sigma=1.0, epsilon=0.01, rc=100.0, smooth=False)


def read_view(path):
    with gzip.open(path, "rt") as stream:
        return json.load(stream)


def arrows(view, name):
    """``(n_atoms_total, 3)`` arrow vectors (Å) of the shape ``name``."""
    shape = view["shapes"][name]
    assert shape["kind"] == "arrow"
    return np.array([a["vector"] for a in shape["parameters"]["atom"]])


def total_forces(parents, calculator):
    out = []
    for parent in parents:
        atoms = parent.copy()
        atoms.calc = calculator
        out.append(atoms.get_forces())
    return np.concatenate(out)


def test_analysis_view_per_parent(lj_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "write_figures", lambda *args: {})  # 4 s of matplotlib
    out = tmp_path / "out"
    analyze_model(lennard_jones(), lj_dataset, out, AnalysisSettings(group_by="regime"))
    report = json.loads((out / "report.json").read_text())
    view = read_view(out / "parents.chemiscope.json.gz")
    parents = [f for f in lj_dataset if len(f) == 6]
    # one structure per parent, in the report's order
    assert len(view["structures"]) == len(parents) == len(report["per_parent"]) == 3
    for structure, parent in zip(view["structures"], parents):
        assert structure["names"] == ["Ar"] * 6
        np.testing.assert_allclose(structure["x"], parent.positions[:, 0])
    props = view["properties"]
    assert props["parent"]["values"] == [float(row["parent"]) for row in report["per_parent"]]
    assert props["regime"]["values"] == ["low", "high", "low"]
    # every order's properties are the report's per-parent numbers
    for m in range(1, 7):
        for source in ("model", "reference"):
            for key, name in (("V_tilde", "V_tilde"), ("dV_tilde", "|dV_tilde/dr|")):
                if key == "dV_tilde" and m == 1:
                    assert f"{name}[m=1] {source}" not in props  # no force on one atom
                    continue
                prop = props[f"{name}[m={m}] {source}"]
                assert prop["target"] == "structure"
                assert prop["units"] == ("eV/atom" if key == "V_tilde" else "eV/Å")
                expected = [row[source][key][m - 1] for row in report["per_parent"]]
                np.testing.assert_allclose(prop["values"], expected, rtol=1e-12, atol=1e-15)
        difference = props[f"V_tilde[m={m}] difference"]["values"]
        model, reference = (props[f"V_tilde[m={m}] {s}"]["values"] for s in ("model", "reference"))
        np.testing.assert_allclose(difference, np.subtract(model, reference), atol=1e-12)
    # E_1: the model's is 0, the labels' -13 eV: Ṽ^(1) differs by 13 eV/atom, Ṽ^(2) not
    np.testing.assert_allclose(props["V_tilde[m=1] difference"]["values"], 13.0, atol=1e-9)
    np.testing.assert_allclose(props["V_tilde[m=2] difference"]["values"], 0.0, atol=1e-9)
    # arrows: the 2-body forces are the Lennard-Jones forces, scaled so that the
    # longest is ARROW_LENGTH; every order above is zero
    forces = total_forces(parents, lennard_jones())
    scale = ARROW_LENGTH / np.linalg.norm(forces, axis=1).max()
    assert set(view["shapes"]) == {
        f"F[m={m}] {s}" for m in range(2, 7) for s in ("model", "reference")
    }
    for source in ("model", "reference"):
        np.testing.assert_allclose(arrows(view, f"F[m=2] {source}"), scale * forces, atol=ROUNDING)
        for m in range(3, 7):
            np.testing.assert_allclose(arrows(view, f"F[m={m}] {source}"), 0.0, atol=ROUNDING)
    assert f"{scale:.4g} Å per eV/Å" in view["meta"]["description"]
    # settings of the parity-plot example: reference against model, model forces
    settings = view["settings"]
    assert settings["map"]["x"]["property"] == "V_tilde[m=2] reference"
    assert settings["map"]["y"]["property"] == "V_tilde[m=2] model"
    assert settings["map"]["color"]["property"] in props
    assert settings["map"]["joinPoints"] is False
    (structure,) = settings["structure"]
    assert structure["shape"] == "F[m=2] model"
    assert structure["environments"] == {"activated": False}
    # metadata: name, description, authors, the paper and the package
    meta = view["meta"]
    assert meta["name"] and "Analysed: model: LennardJones" in meta["description"]
    assert any("metatrain-mbe" in author for author in meta["authors"])
    assert any("doi:10.1063/5.0303302" in r and "arXiv:2509.14146" in r for r in meta["references"])
    assert any(r.startswith("metatrain-mbe") for r in meta["references"])
    report_md = (out / "report.md").read_text()
    assert "parents.chemiscope.json.gz" in report_md


def emt_results(n_parents=2, n_atoms=5):
    """Model results of complete expansions of Cu clusters with EMT (many-body)."""
    rng = np.random.default_rng(3)
    parents = [random_cluster(n_atoms, rng, "Cu") for _ in range(n_parents)]
    for parent in parents:
        parent.positions *= 2.5  # Cu-Cu about 2.5 Å
    assign_parent_ids(parents)
    plans = parent_plans(parents, AnalysisSettings())
    return parents, model_results(make_evaluator(EMT()), parents, plans)


def test_m_body_forces_add_up_to_the_forces():
    parents, results = emt_results()
    for parent, r in zip(parents, results):
        forces = m_body_forces(r.terms)
        assert forces.shape == (5, 5, 3)
        np.testing.assert_allclose(forces[0].numpy(), 0.0, atol=1e-12)  # one atom alone
        expected = total_forces([parent], EMT())
        np.testing.assert_allclose(forces.sum(0).numpy(), expected, atol=1e-9)
        assert float(forces[2].abs().max()) > 1e-3  # EMT is not pair-additive


def test_order_and_scale_of_the_arrows_without_labels(tmp_path):
    parents, results = emt_results()
    path = write_chemiscope(tmp_path / "v.json.gz", results, arrow_order=3, arrow_scale=0.5)
    view = read_view(path)
    assert len(view["structures"]) == 2
    assert set(view["shapes"]) == {f"F[m={m}] model" for m in range(2, 6)}
    summed = sum(arrows(view, f"F[m={m}] model") for m in range(2, 6))
    np.testing.assert_allclose(summed, 0.5 * total_forces(parents, EMT()), atol=4 * ROUNDING)
    expected = np.concatenate([m_body_forces(r.terms)[2].numpy() for r in results])
    np.testing.assert_allclose(arrows(view, "F[m=3] model"), 0.5 * expected, atol=ROUNDING)
    assert not any("reference" in name or "difference" in name for name in view["properties"])
    settings = view["settings"]
    assert settings["map"]["x"]["property"] == "V_tilde[m=3] model"
    assert settings["map"]["y"]["property"] == "|dV_tilde/dr|[m=3] model"
    assert "color" not in settings["map"]
    assert settings["structure"][0]["shape"] == "F[m=3] model"
    # an order past the largest shows the largest
    data = chemiscope_input(results, arrow_order=9)
    assert data["settings"]["structure"][0]["shape"] == "F[m=5] model"
    with pytest.raises(ValueError, match="at least 2"):
        chemiscope_input(results, arrow_order=1)


def test_energy_only_labels_and_partial_labels():
    parents, results = emt_results(n_parents=3)
    # parent 0 labelled with energies only (the model's own, shifted), parent 1 not at all
    r = results[0]
    r.reference = SubclusterSet(r.parent, r.plan, r.energies + 0.1 * r.plan.orders, None)
    results[2].reference = SubclusterSet(
        results[2].parent, results[2].plan, results[2].energies, results[2].gradients
    )
    data = chemiscope_input(results)
    props = data["properties"]
    reference = props["V_tilde[m=2] reference"]["values"]
    assert math.isnan(reference[1]) and not math.isnan(reference[0])
    dv = props["|dV_tilde/dr|[m=2] reference"]["values"]
    assert (
        math.isnan(dv[0])
        and math.isnan(dv[1])
        and dv[2] == pytest.approx(props["|dV_tilde/dr|[m=2] model"]["values"][2])
    )
    # reference arrows: zero where a parent has no forces, the model's where equal
    shape = data["shapes"]["F[m=2] reference"]["parameters"]["atom"]
    vectors = np.array([a["vector"] for a in shape])
    assert not vectors[:10].any()
    model = np.array([a["vector"] for a in data["shapes"]["F[m=2] model"]["parameters"]["atom"]])
    np.testing.assert_allclose(vectors[10:], model[10:])


def test_molecules_as_bodies():
    parents = water_tetramers(n_parents=2)
    plans = parent_plans(parents, AnalysisSettings())
    results = model_results(make_evaluator(TIP3P(rc=20.0)), parents, plans)
    data = chemiscope_input(results, arrow_scale=1.0)
    props = data["properties"]
    assert props["V_tilde[m=2] model"]["units"] == "eV/molecule"
    assert props["bodies"]["values"] == [4, 4]
    assert "|dV_tilde/dr|[m=1] model" in props  # a molecule's atoms feel forces
    expected = total_forces(parents, TIP3P(rc=20.0))
    two_body = np.array([a["vector"] for a in data["shapes"]["F[m=2] model"]["parameters"]["atom"]])
    np.testing.assert_allclose(two_body, expected, atol=ROUNDING)
    for m in (3, 4):
        shape = data["shapes"][f"F[m={m}] model"]["parameters"]["atom"]
        np.testing.assert_allclose([a["vector"] for a in shape], 0.0, atol=ROUNDING)


def test_no_view_without_chemiscope_or_parents(tmp_path, monkeypatch):
    _, results = emt_results(n_parents=1, n_atoms=3)
    assert write_chemiscope(tmp_path / "v.json.gz", []) is None
    monkeypatch.setitem(sys.modules, "chemiscope", None)
    assert write_chemiscope(tmp_path / "w.json.gz", results) is None
    assert not list(tmp_path.iterdir())
