"""The hydrogen data the package ships (data/hydrogen/): what the README there
promises, and the reference MBE pattern of the paper (sec. IV, Fig. 2)."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from metatrain_mbe.analysis import AnalysisSettings, reference_terms, statistics_section
from metatrain_mbe.data import read_structures
from metatrain_mbe.data.io import get_energy, get_forces, is_isolated_atom, is_subcluster

DATA = Path(__file__).parents[2] / "data" / "hydrogen"


def _shipped(name):
    """The compressed file that make.sh writes, else the first release's."""
    path = DATA / f"{name}.xyz.gz"
    return path if path.exists() else DATA / f"{name}.xyz"


@pytest.fixture(scope="module")
def subclusters():
    return read_structures(_shipped("subclusters"))


@pytest.fixture(scope="module")
def parents():
    return read_structures(_shipped("parents"))


def test_parents_are_distinct_labelled_8_mers_half_per_regime(parents):
    # 1 000 parents (ids 0-999) once make.sh has labelled them; 400 before
    assert len(parents) >= (1000 if _shipped("parents").suffix == ".gz" else 400)
    assert all(len(a) == 8 and not a.pbc.any() for a in parents)
    assert len({a.info["mbe_parent"] for a in parents}) == len(parents)
    geometries = {np.round(a.positions, 6).tobytes() for a in parents}
    assert len(geometries) == len(parents)
    regimes = Counter(a.info["regime"] for a in parents)
    assert set(regimes) == {"low", "high"} and regimes["low"] == regimes["high"]
    for atoms in parents:
        assert get_energy(atoms) < 0 and get_forces(atoms).shape == (8, 3)


def test_the_first_400_parents_keep_their_ids_and_labels(parents):
    # ids 0-199 low and 200-399 high, as first shipped: digests of their
    # energies and positions, weighted by id (so that a renumbering shows)
    first = sorted(
        (a for a in parents if int(a.info["mbe_parent"]) < 400),
        key=lambda a: int(a.info["mbe_parent"]),
    )
    assert [int(a.info["mbe_parent"]) for a in first] == list(range(400))
    assert [a.info["regime"] for a in first] == ["low"] * 200 + ["high"] * 200
    energies = np.array([get_energy(a) for a in first])
    sizes = np.array([np.abs(a.positions).sum() for a in first])
    assert energies.sum() == pytest.approx(-48183.89349656532, abs=1e-6)
    assert (energies * np.arange(400)).sum() == pytest.approx(-9470293.981643885, abs=1e-4)
    assert (sizes * np.arange(400)).sum() == pytest.approx(1011591.60574524, abs=1e-3)


def test_complete_sets_balanced_between_regimes(subclusters):
    # 50 per regime once make.sh is done; batches add one set per regime
    isolated = [a for a in subclusters if is_isolated_atom(a) and not is_subcluster(a)]
    assert [a.get_chemical_symbols() for a in isolated] == [["H"]]
    assert get_energy(isolated[0]) == pytest.approx(-12.437, abs=1e-3)  # unpolarised
    terms, parents, e1 = reference_terms(subclusters, AnalysisSettings())
    assert e1["H"] == pytest.approx(get_energy(isolated[0]))
    regimes = Counter(p.info["regime"] for p in parents.values())
    assert regimes["low"] >= 12 and regimes["high"] >= 12
    assert abs(regimes["low"] - regimes["high"]) <= 1
    assert all(t.plan.n_atoms == 8 and t.dv is not None for t in terms)


def test_reference_mbe_alternates_with_growing_magnitude(subclusters):
    terms, parents, _ = reference_terms(subclusters, AnalysisSettings(group_by="regime"))
    groups = statistics_section(terms, parents, "regime")["groups"]

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
