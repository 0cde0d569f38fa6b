"""The hydrogen data the package ships (data/hydrogen/): what the README there
promises, and the reference MBE pattern of the paper (sec. IV, Fig. 2)."""

from collections import Counter
from pathlib import Path

import pytest

from metatrain_mbe.data import read_structures
from metatrain_mbe.data.io import get_energy, get_forces, is_isolated_atom, is_subcluster
from metatrain_mbe.interface.analysis import AnalysisSettings, reference_terms, report_section

DATA = Path(__file__).parents[2] / "data" / "hydrogen"


@pytest.fixture(scope="module")
def subclusters():
    return read_structures(DATA / "subclusters.xyz")


def test_parents_are_labelled_8_mers_half_per_regime():
    parents = read_structures(DATA / "parents.xyz")
    assert len(parents) >= 400
    assert all(len(a) == 8 and not a.pbc.any() for a in parents)
    assert len({a.info["mbe_parent"] for a in parents}) == len(parents)
    regimes = Counter(a.info["regime"] for a in parents)
    assert set(regimes) == {"low", "high"} and regimes["low"] == regimes["high"]
    for atoms in parents:
        assert get_energy(atoms) < 0 and get_forces(atoms).shape == (8, 3)


def test_complete_sets_for_at_least_12_parents_per_regime(subclusters):
    isolated = [a for a in subclusters if is_isolated_atom(a) and not is_subcluster(a)]
    assert [a.get_chemical_symbols() for a in isolated] == [["H"]]
    terms, parents, e1 = reference_terms(subclusters, AnalysisSettings())
    assert e1["H"] == pytest.approx(get_energy(isolated[0]))
    regimes = Counter(p.info["regime"] for p in parents.values())
    assert regimes["low"] >= 12 and regimes["high"] >= 12
    assert all(t.plan.n_atoms == 8 and t.dv is not None for t in terms)


def test_reference_mbe_alternates_with_growing_magnitude(subclusters):
    terms, parents, _ = reference_terms(subclusters, AnalysisSettings(group_by="regime"))
    groups = report_section(terms, parents, "regime")["groups"]

    def means(regime, quantity):
        orders = groups[regime]["orders"]
        return [orders[str(m)][quantity]["mean"] for m in range(2, 9)]

    for regime in ("low", "high"):
        v = means(regime, "V_tilde")
        assert v[0] < 0 < v[1], (regime, v)
        assert all(a * b < 0 for a, b in zip(v, v[1:])), f"{regime}: no alternation {v}"
        # growing magnitude from m = 3 on (at low density |V~(3)| < |V~(2)|: README)
        assert all(abs(b) > abs(a) for a, b in zip(v[1:], v[2:])), f"{regime}: {v}"
        dv = means(regime, "dV_tilde")
        assert all(b > a for a, b in zip(dv, dv[1:])), f"{regime}: forces {dv}"
    high = means("high", "V_tilde")
    assert abs(high[1]) > abs(high[0]), f"high: |V~(3)| <= |V~(2)| {high}"
    # the chemical trend: larger terms at high density, for every order
    assert all(abs(h) > abs(lo) for h, lo in zip(means("high", "V_tilde"), means("low", "V_tilde")))
