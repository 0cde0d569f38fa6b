import math

import pytest

from metatrain_mbe.analysis.study import aggregate, deviation, findings, resolved_orders

REFERENCE = {"2": -1.0, "3": 1.0, "4": -2.0, "5": 3.0}
FORCES = {"2": 2.0, "3": 3.0, "4": 4.0, "5": 6.0}
FAMILIES = {"pet": "pet", "soap_bpnn": "soap_bpnn"}


def _record(arch, proportion, seed, scale, full_rmse, sub_rmse):
    """A run whose model terms are the reference times ``scale[m]``."""
    model_v = {m: REFERENCE[m] * scale[m] for m in REFERENCE}
    model_f = {m: FORCES[m] * scale[m] for m in FORCES}
    return {
        "architecture": arch,
        "proportion": proportion,
        "dataset_proportion": 1.0,
        "seed": seed,
        "rmse": {"energy_per_atom": full_rmse + 0.001 * seed, "forces": 0.5},
        "order_rmse": {m: {"energy_per_atom": sub_rmse, "forces": 1.0} for m in ("1", "2", "3")},
        "e1": {"model": {"H": -12.0}, "reference": {"H": -12.0}},
        "groups": {
            "all": {
                "model": {"V_tilde": model_v, "dV_tilde": model_f},
                "reference": {"V_tilde": dict(REFERENCE), "dV_tilde": dict(FORCES)},
            }
        },
    }


def _paper_like():
    far = {m: 0.2 for m in REFERENCE}  # every order 80 % off
    pet = {"2": 1.0, "3": 1.05, "4": 1.1, "5": 1.3}  # resolves m <= 4
    soap = {"2": 1.05, "3": 1.4, "4": 1.6, "5": 2.0}  # resolves m <= 2
    return [
        *(_record("pet", 0.0, s, far, 0.010, 0.30) for s in (0, 1)),
        *(_record("pet", 1.0, s, pet, 0.008, 0.05) for s in (0, 1)),
        *(_record("soap_bpnn", 0.0, s, far, 0.010, 0.30) for s in (0, 1)),
        *(_record("soap_bpnn", 1.0, s, soap, 0.020, 0.10) for s in (0, 1)),
    ]


def test_aggregate_averages_over_seeds_only():
    points = aggregate(_paper_like())
    assert [(p["architecture"], p["proportion"], p["n_seeds"]) for p in points] == [
        ("pet", 0.0, 2),
        ("pet", 1.0, 2),
        ("soap_bpnn", 0.0, 2),
        ("soap_bpnn", 1.0, 2),
    ]
    energy = points[0]["rmse"]["energy_per_atom"]
    assert energy["mean"] == pytest.approx(0.0105) and energy["std"] == pytest.approx(0.0005)


def test_deviation_and_resolved_orders():
    point = aggregate(_paper_like())[1]  # pet at 1.0
    assert deviation(point, "all", "V_tilde", "3") == pytest.approx(0.05)
    assert resolved_orders(point, "all") == 4
    assert math.isnan(deviation(point, "other group", "V_tilde", "3"))


def test_findings_reproduced_by_paper_like_study():
    verdicts = [f["holds"] for f in findings(aggregate(_paper_like()), FAMILIES)]
    assert verdicts == [True, True, True, True, True]


def test_findings_compare_families_not_the_names_a_study_gives():
    records = _paper_like()
    labels = {"pet": "small", "soap_bpnn": "pet-like name"}
    for record in records:
        record["architecture"] = labels[record["architecture"]]
    families = {"small": "pet", "pet-like name": "soap_bpnn"}
    verdicts = [f["holds"] for f in findings(aggregate(records), families)]
    assert verdicts == [True, True, True, True, True]
    swapped = [
        f["holds"]
        for f in findings(aggregate(records), {"small": "soap_bpnn", "pet-like name": "pet"})
    ]
    assert swapped[2] is False and swapped[4] is False


def test_findings_not_reproduced_when_models_already_match():
    records = _paper_like()
    for record in records:  # at proportion 0 the models match the reference
        if record["proportion"] == 0.0:
            record["groups"]["all"]["model"] = record["groups"]["all"]["reference"]
            record["order_rmse"] = {m: {"energy_per_atom": 0.01} for m in ("2", "3")}
    verdicts = [f["holds"] for f in findings(aggregate(records), FAMILIES)]
    assert verdicts[0] is False  # not far without sub-clusters
    assert verdicts[3] is False  # sub-cluster RMSE did not fall


def test_findings_cannot_tell_without_proportion_zero():
    records = [r for r in _paper_like() if r["proportion"] == 1.0]
    verdicts = [f["holds"] for f in findings(aggregate(records), FAMILIES)]
    assert verdicts[0] is None and verdicts[3] is None and verdicts[4] is None
