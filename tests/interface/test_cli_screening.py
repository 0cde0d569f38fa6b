"""Large clusters through the command line: screened, truncated families.

* ``subclusters --cutoff`` writes the screened family, ``analyze --cutoff``
  expands it, and a pair potential has no V(S) beyond pairs in it;
* ``analyze --model --max-order 3 --cutoff 3`` of a 100-atom cluster writes
  V(S) that equal an independent recursion over the same family, through
  metatomic's ase calculator, in the body-index TensorMap layout;
* bad cutoffs and a refused plan are one-line errors before any model loads.
"""

import itertools
import json
import warnings

import ase
import ase.io
import metatensor.torch as mts
import numpy as np
import pytest
import torch

from metatrain_mbe.interface.cli import main

from .conftest import lj_hydrogen_label


def sparse_cluster(n_atoms: int, density: float = 0.05, seed: int = 0) -> ase.Atoms:
    """Hydrogen atoms at ``density`` per Å^3, no two closer than 0.7 Å."""
    rng = np.random.default_rng(seed)
    side = (n_atoms / density) ** (1 / 3)
    positions: list[np.ndarray] = []
    while len(positions) < n_atoms:
        trial = rng.uniform(0.0, side, size=3)
        if all(np.linalg.norm(trial - p) > 0.7 for p in positions):
            positions.append(trial)
    return ase.Atoms("H" * n_atoms, positions=positions)


def screened_family(atoms: ase.Atoms, max_order: int, cutoff: float) -> list[tuple[int, ...]]:
    """Every set of at most ``max_order`` atoms within ``cutoff`` of each other,
    by brute force over all combinations."""
    distances = atoms.get_all_distances()
    return [
        c
        for m in range(1, max_order + 1)
        for c in itertools.combinations(range(len(atoms)), m)
        if all(distances[a, b] <= cutoff for a, b in itertools.combinations(c, 2))
    ]


def rows_by_bodies(block) -> dict[tuple[int, ...], float]:
    """V(S) of a block of ``mbe_energy`` by body tuple (padding dropped)."""
    bodies = block.samples.values[:, 1:].tolist()
    return {tuple(b for b in row if b >= 0): float(v) for row, v in zip(bodies, block.values[:, 0])}


def test_subclusters_and_analyze_share_the_screened_family(tmp_path, capsys):
    parent = sparse_cluster(40, seed=1)
    parent.info["mbe_parent"] = 0
    parents = tmp_path / "parents.xyz"
    ase.io.write(parents, lj_hydrogen_label([parent.copy()]), format="extxyz")
    subs = tmp_path / "subs.xyz"
    args = ["subclusters", str(parents), "-o", str(subs), "--orders", "2:3", "--cutoff", "2.5"]
    assert main([*args, "--with-parents"]) == 0
    written = [a for a in ase.io.read(subs, ":") if "mbe_atoms" in a.info]
    expected = [c for c in screened_family(parent, 3, 2.5) if len(c) >= 2]
    assert [tuple(a.info["mbe_atoms"]) for a in written] == expected
    assert 0 < len(expected) < 40 * 39 * 38 / 6 / 10  # far fewer than all trimers

    labelled = tmp_path / "labelled.xyz"
    ase.io.write(labelled, lj_hydrogen_label(ase.io.read(subs, ":")), format="extxyz")
    out = tmp_path / "out"
    base = ["analyze", str(labelled), "-o", str(out), "--max-order", "3"]
    assert main([*base, "--cutoff", "2.5"]) == 0
    energy = mts.load(str(out / "reference" / "mbe_energy.mts"))
    assert energy.block({"order": 3}).samples.names == ["system", "body_1", "body_2", "body_3"]
    assert energy.block({"order": 3}).values.abs().max() < 1e-9  # a pair potential
    assert energy.block({"order": 2}).values.abs().max() > 1e-4
    assert set(rows_by_bodies(energy.block({"order": 3}))) == {c for c in expected if len(c) == 3}
    summary = mts.load(str(out / "reference" / "mbe_summary.mts"))
    kept = summary.block({"order": 3}).values[0]
    assert kept[2].item() == sum(len(c) == 3 for c in expected)
    assert torch.isnan(kept[0]) and torch.isnan(kept[1])  # Eq. 7 and 8 need all C(N, 3)
    assert kept[3].item() == pytest.approx(0.0, abs=1e-9)
    report = json.loads((out / "report.json").read_text())
    family = report["family"]["orders"]["3"]
    assert (family["kept"], family["possible"]) == (int(kept[2]), 40 * 39 * 38 // 6)
    assert not family["complete"] and report["family"]["orders"]["2"]["complete"] is False
    assert "## The expansion's family and its truncation" in (out / "report.md").read_text()

    # without the cutoff the same labels are not a complete set
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "unscreened")]) == 2
    assert "incomplete sub-cluster set" in capsys.readouterr().err


def test_model_terms_of_a_100_atom_cluster_equal_an_independent_recursion(tmp_path, tiny_models):
    from metatomic_ase import MetatomicCalculator

    parent = sparse_cluster(100, seed=2)
    path = tmp_path / "h100.xyz"
    ase.io.write(path, parent, format="extxyz")
    model = tiny_models["pet"]
    out = tmp_path / "out"
    args = ["analyze", str(path), "--model", str(model), "-o", str(out)]
    assert (
        main([*args, "--max-order", "3", "--cutoff", "3", "-e", str(model.parent / "extensions")])
        == 0
    )
    energy = mts.load(str(out / "model" / "mbe_energy.mts"))
    assert energy.keys.values.flatten().tolist() == [1, 2, 3]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calculator = MetatomicCalculator(
            str(model), extensions_directory=str(model.parent / "extensions")
        )
    family = screened_family(parent, 3, 3.0)
    e = {}
    for bodies in family:
        atoms = parent[list(bodies)]
        atoms.calc = calculator
        e[bodies] = atoms.get_potential_energy()
    v: dict[tuple[int, ...], float] = {}
    for bodies in family:  # ascending order: every proper subset comes first
        proper = [t for r in range(1, len(bodies)) for t in itertools.combinations(bodies, r)]
        v[bodies] = e[bodies] - sum(v[t] for t in proper)
    found = {}
    for m in (1, 2, 3):
        found.update(rows_by_bodies(energy.block({"order": m})))
    assert set(found) == set(family)
    worst = max(abs(found[s] - v[s]) for s in family)
    assert worst < 1e-8, worst
    report = json.loads((out / "report.json").read_text())
    orders = report["family"]["orders"]
    assert orders["3"]["kept"] == sum(len(c) == 3 for c in family)
    assert orders["3"]["truncation_error"] >= 0.0


@pytest.mark.parametrize(
    "cutoff, message",
    [
        ("-1", "positive distance"),
        ("abc", "is not a cutoff"),
        ("3:5,4:6", "must not grow"),
        ("1:3", "orders >= 2"),
    ],
)
def test_bad_cutoffs_are_one_line_errors(tmp_path, capsys, cutoff, message):
    path = tmp_path / "p.xyz"
    ase.io.write(path, sparse_cluster(10), format="extxyz")
    assert main(["analyze", str(path), "-o", str(tmp_path / "o"), f"--cutoff={cutoff}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--cutoff" in error and message in error
    assert not (tmp_path / "o").exists()


def test_a_refused_plan_stops_before_the_model_loads(tmp_path, capsys, monkeypatch, tiny_models):
    import metatrain_mbe.interface.model_analysis as model_analysis

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(model_analysis, "make_evaluator", no_model)
    path = tmp_path / "h40.xyz"
    ase.io.write(path, sparse_cluster(40), format="extxyz")
    args = ["analyze", str(path), "--model", str(tiny_models["pet"]), "-o", str(tmp_path / "o")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--max-order" in error and "--cutoff" in error
    assert "h40.xyz" in error and not (tmp_path / "o").exists()
