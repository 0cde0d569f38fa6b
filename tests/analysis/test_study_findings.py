"""The paper's Fig. 5 (dataset size) and Fig. 6 (out of distribution)
findings, checked on synthetic study points."""

import math

import pytest

from metatrain_mbe.analysis.study import (
    aggregate,
    convergence_ratio,
    dataset_findings,
    extrapolation_findings,
    spearman,
)

FAMILIES = {"mace": "mace", "pet": "pet", "soap_bpnn": "soap_bpnn"}
ORDERS = [str(m) for m in range(2, 9)]
DATASETS = (0.1, 0.2, 0.5, 1.0)
REFERENCE_F = [2.9, 4.0, 4.7, 6.0, 8.0, 11.4, 16.4]
REFERENCE_V = [-1.8, 1.8, -2.1, 2.8, -4.0, 6.3, -10.5]


def _terms(arch: str, d: float, group: str) -> tuple[list[float], list[float]]:
    """Paper-like model |dṼ/dr| and Ṽ per order at dataset proportion ``d``."""
    if arch == "mace":  # converging at every size
        forces = [2.4, 1.2, 0.3, 0.1, 0.07, 0.04, 0.05]
    elif arch == "soap_bpnn":  # converging at first; m >= 3 growing, at high density
        grow = 1 + 4 * d if group == "high" else 1.0
        forces = [0.34] + [grow * f for f in (0.05, 0.02, 0.01, 0.005, 0.004, 0.003)]
    else:  # pet: no convergence, its high orders growing
        forces = [0.5, 0.4, 0.5] + [(1 + 2 * d) * f for f in (0.6, 0.8, 1.0, 1.3)]
    return forces, [-1.0] + [0.1 * f for f in forces[1:]]


def _dataset_record(arch, d, seed, groups=("all", "high"), proportion=0.0):
    judged = {}
    for group in groups:
        forces, energies = _terms(arch, d, group)
        judged[group] = {
            "model": {
                "V_tilde": dict(zip(ORDERS, energies)),
                "dV_tilde": dict(zip(ORDERS, forces)),
            },
            "reference": {
                "V_tilde": dict(zip(ORDERS, REFERENCE_V)),
                "dV_tilde": dict(zip(ORDERS, REFERENCE_F)),
            },
        }
    return {
        "architecture": arch,
        "proportion": proportion,
        "dataset_proportion": d,
        "seed": seed,
        "groups": judged,
    }


def _dataset_points(archs=("mace", "pet", "soap_bpnn"), datasets=DATASETS, **given):
    return aggregate(
        [_dataset_record(a, d, s, **given) for a in archs for d in datasets for s in (0, 1)]
    )


def test_spearman_and_convergence_ratio():
    assert spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert spearman([1, 2, 3, 4], [1, 1, 2, 2]) == pytest.approx(0.894427191)
    assert math.isnan(spearman([1, 2], [1, 2])) and math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    point = _dataset_points(archs=("mace",))[0]
    # lower half m = 2, 3, 4; upper half m = 5..8
    expected = (0.1 + 0.07 + 0.04 + 0.05) / 4 / ((2.4 + 1.2 + 0.3) / 3)
    assert convergence_ratio(point) == pytest.approx(expected)
    assert math.isnan(convergence_ratio(point, "no such group"))


def test_dataset_findings_reproduced_by_paper_like_points():
    found = dataset_findings(_dataset_points(), FAMILIES)
    assert [f["holds"] for f in found] == [True] * 6, found
    assert "x" in found[3]["evidence"] and "high" in found[3]["evidence"]


def test_dataset_findings_not_reproduced_when_the_architectures_swap():
    swapped = {"mace": "pet", "pet": "mace", "soap_bpnn": "soap_bpnn"}
    verdicts = [f["holds"] for f in dataset_findings(_dataset_points(), swapped)]
    assert verdicts[0] is False  # "MACE" (PET's terms) does not converge
    assert verdicts[4] is False and verdicts[5] is False  # "PET" (MACE's) converges, flat
    pinned = _dataset_points(archs=("soap_bpnn",))
    for point in pinned:  # SOAP-BPNN's Ṽ^(2) now moves with the data
        stats = point["groups"]["all"]["model"]["V_tilde"]["2"]
        stats["mean"] = -1.0 - point["dataset_proportion"]
    assert dataset_findings(pinned, FAMILIES)[2]["holds"] is False


@pytest.mark.parametrize(
    "points, expected",
    [
        (lambda: _dataset_points(datasets=(1.0,)), "the study has one dataset proportion"),
        (
            lambda: aggregate([_dataset_record("pet", d, 0, proportion=1.0) for d in DATASETS]),
            "the study has no proportion 0",
        ),
    ],
)
def test_dataset_findings_cannot_tell(points, expected):
    found = dataset_findings(points(), FAMILIES)
    assert [f["holds"] for f in found] == [None] * 6
    assert {f["evidence"] for f in found} == {expected}


def test_dataset_findings_cannot_tell_without_the_architecture_or_group():
    found = dataset_findings(_dataset_points(archs=("pet",)), FAMILIES)
    assert [f["holds"] for f in found] == [None, None, None, None, True, True]
    assert found[0]["evidence"] == "the study has no MACE"
    found = dataset_findings(_dataset_points(groups=("all",)), FAMILIES)
    assert found[3]["holds"] is None and "no parent group 'high'" in found[3]["evidence"]
    assert found[2]["holds"] is True


GROUPS = ("0.72", "0.876", "0.999", "1.14", "1.25")
TRAINING = {"both": [0.46, 1.34], "low": [0.46], "high": [1.34]}
COMPOSITIONS = {name: {"training_values": values} for name, values in TRAINING.items()}
BASE = {"pet": 0.006, "mace": 0.01, "soap_bpnn": 0.03}  # eV/atom without sub-clusters
WITH = {"pet": 0.9, "mace": 1.3, "soap_bpnn": 0.8}  # factor with sub-clusters


def _ood_record(arch, composition, proportion, seed, factor=WITH, trend=1.0):
    extrapolation = {}
    for group in GROUPS:
        distance = min(abs(float(group) - t) for t in TRAINING[composition])
        energy = BASE[arch] * (1 + trend * 5 * distance) * (factor[arch] if proportion else 1)
        extrapolation[group] = {
            "energy_per_atom": energy * (1 + 0.01 * seed),
            "forces": 10 * energy,
            "n_structures": 20,
        }
    return {
        "architecture": arch,
        "composition": composition,
        "proportion": proportion,
        "dataset_proportion": 1.0,
        "seed": seed,
        "extrapolation": extrapolation,
    }


def _ood_points(archs=tuple(BASE), proportions=(0.0, 1.0), **given):
    return aggregate(
        [
            _ood_record(a, c, p, s, **given)
            for a in archs
            for c in TRAINING
            for p in proportions
            for s in (0, 1, 2)
        ]
    )


def test_extrapolation_findings_reproduced_by_paper_like_points():
    found = extrapolation_findings(_ood_points(), FAMILIES, COMPOSITIONS)
    assert [f["holds"] for f in found] == [True] * 5, found
    assert found[1]["evidence"].startswith("both: mace ")
    assert "pet: " in found[3]["evidence"] and "(x0.90)" in found[3]["evidence"]


def test_extrapolation_findings_not_reproduced():
    # errors that fall away from the training regime, MACE much better with sub-clusters
    points = _ood_points(factor={"pet": 1.2, "mace": 0.3, "soap_bpnn": 1.0}, trend=-0.1)
    found = extrapolation_findings(points, FAMILIES, COMPOSITIONS)
    assert [f["holds"] for f in found] == [False, True, False, False, False]
    slow_pet = {"pet": 0.02, "mace": 0.01, "soap_bpnn": 0.03}
    points = _ood_points()
    for point in points:  # PET above MACE everywhere
        scale = slow_pet[point["architecture"]] / BASE[point["architecture"]]
        for stats in point["extrapolation"].values():
            stats["energy_per_atom"]["mean"] *= scale
    assert extrapolation_findings(points, FAMILIES, COMPOSITIONS)[1]["holds"] is False


def test_extrapolation_findings_cannot_tell():
    no_place = {name: {"training_values": []} for name in TRAINING}
    found = extrapolation_findings(_ood_points(), FAMILIES, no_place)
    assert found[0]["holds"] is None and "training_values" in found[0]["evidence"]
    found = extrapolation_findings(_ood_points(proportions=(0.0,)), FAMILIES, COMPOSITIONS)
    assert [f["holds"] for f in found][2:] == [None, None, None]
    assert found[2]["evidence"] == "the study has no proportion > 0"
    found = extrapolation_findings(_ood_points(archs=("mace",)), FAMILIES, COMPOSITIONS)
    assert found[1]["holds"] is None and found[3]["holds"] is None
    assert found[0]["holds"] is True and found[2]["holds"] is True
    found = extrapolation_findings(_dataset_points(), FAMILIES, COMPOSITIONS)
    assert {f["evidence"] for f in found} == {"the study has no extrapolation files"}
