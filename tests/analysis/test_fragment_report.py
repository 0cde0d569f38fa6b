"""The MBE report with molecules as bodies (``mbe_fragment``): a model analysis
and a reference-only one of water tetramers labelled with ase's TIP3P, which is
pair-additive between molecules, so every V(S) of 3 or more molecules vanishes."""

import ase
import numpy as np
import pytest
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator
from ase.calculators.tip3p import TIP3P

from metatrain_mbe.analysis import AnalysisSettings
from metatrain_mbe.data import assign_parent_ids, enumerate_subclusters
from metatrain_mbe.interface.model_analysis import analyze_model
from metatrain_mbe.interface.reference_analysis import analyze_reference

CORNERS = [[0.0, 0.0, 0.0], [2.9, 0.0, 0.0], [0.0, 2.9, 0.3], [2.8, 2.8, 0.5]]


def water_tetramers(n_parents=3, seed=0):
    """Tetramers of rigid waters near the corners of a 2.9 Å square."""
    rng = np.random.default_rng(seed)
    parents = []
    for pid in range(n_parents):
        parent = ase.Atoms()
        for corner in CORNERS:
            water = molecule("H2O")
            water.rotate(rng.uniform(0, 360), rng.normal(size=3))
            water.translate(np.array(corner) + rng.normal(scale=0.1, size=3))
            parent += water
        parent.arrays["mbe_fragment"] = np.repeat(np.arange(4), 3)
        parent.info["mbe_parent"] = pid
        parents.append(parent)
    return assign_parent_ids(parents)


def labelled(frames, calculator):
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calculator
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def frames():
    parents = water_tetramers()
    return labelled(parents + enumerate_subclusters(parents), TIP3P(rc=20.0))


def test_model_report_counts_molecules(frames, tmp_path):
    # the "model" is TIP3P with a shorter cutoff: other pair energies, still pair-additive
    report = analyze_model(TIP3P(rc=4.0), frames, tmp_path / "out", AnalysisSettings())
    assert report["units"]["bodies"] == "molecules"
    assert report["units"]["V_tilde"] == "eV/molecule"
    for source in ("model", "reference"):
        orders = report[source]["groups"]["all"]["orders"]
        assert set(orders) == {"2", "3", "4"}
        for m in ("3", "4"):
            assert abs(orders[m]["V_tilde"]["mean"]) < 1e-9
        assert abs(orders["2"]["V_tilde"]["mean"]) > 1e-3
    # one-body terms are labelled molecules: order 1 is in the per-order RMSE
    assert report["rmse"]["1"]["n_subclusters"] == 12
    assert report["rmse"]["2"]["n_subclusters"] == 18
    assert report["rmse"]["2"]["energy_per_atom"] > 1e-4  # the cutoffs differ
    assert report["baselines"]["V_tilde"] == {}  # no isolated-atom baseline
    one_body = report["one_body"]["H2O"]  # rigid TIP3P waters: no intramolecular energy
    assert one_body["n"] == 12 and one_body["rmse"] == 0.0 and one_body["reference_mean"] == 0.0
    assert report["e1_check"]["difference"] == {}
    dimers = report["dimers"]["H2O-H2O"]
    assert len(dimers["r"]) == 18 and len(dimers["grid"]["r"]) == 80
    assert 2.3 < min(dimers["r"]) < max(dimers["r"]) < 4.5  # centre-of-mass distances
    text = (tmp_path / "out" / "report.md").read_text()
    assert "## One-body terms" in text and "eV/molecule" in text and "| H2O | 12 |" in text
    assert "E_1 baselines" not in text and "Ṽ reference (eV/atom)" not in text


def test_reference_report_counts_molecules(frames, tmp_path):
    report = analyze_reference(frames, tmp_path / "ref", AnalysisSettings())
    assert report["e1"] == {}
    assert report["units"]["bodies"] == "molecules"
    assert report["one_body"]["H2O"]["n"] == 12
    orders = report["reference"]["groups"]["all"]["orders"]
    assert abs(orders["3"]["V_tilde"]["mean"]) < 1e-9
    assert [row["n_bodies"] for row in report["per_parent"]] == [4, 4, 4]
    assert [row["n_atoms"] for row in report["per_parent"]] == [12, 12, 12]
