"""The report sections: E_1 baselines (appendix C), float32 round-off, Markdown."""

import pytest
import torch

from metatrain_mbe.analysis import ParentResult, diagnostics
from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan
from metatrain_mbe.interface.report.markdown import write_markdown

from ..conftest import hydrogen_cluster


def linear_result(n_atoms=5, e1=-13.0, eps=0.2):
    """E(S) = m (E_1 + eps): appendix C's purely linear cohesive energy."""
    parent = hydrogen_cluster(n_atoms)
    parent.info["mbe_parent"] = 0
    plan = SubsetPlan(n_atoms)
    energies = plan.orders.to(torch.float64) * (e1 + eps)
    energies[plan.orders == 1] = e1
    gradients = torch.zeros((len(plan.atom_rows()[0]), 3), dtype=torch.float64)
    terms = BodyOrderTerms.from_energies(0, plan, energies, gradients)
    total = float(energies[plan.find(list(range(n_atoms)))])
    return ParentResult(parent, plan, energies, gradients, terms, total)


def test_appendix_c_alternation_and_effective_e1():
    result = linear_result()
    # with the isolated-atom E_1: V^(m) = (-1)^m m eps, so Ṽ^(m) = (-1)^m eps
    expected = torch.tensor([(-1) ** m * 0.2 for m in range(2, 6)], dtype=torch.float64)
    torch.testing.assert_close(result.terms.v_tilde()[1:], expected)
    fitted = diagnostics.effective_e1(result.energies, result.plan, result.parent.numbers)
    assert fitted == {1: pytest.approx(-12.8)}
    report = diagnostics.baselines([result], {"H": -13.0})
    assert report["e1"]["effective_model"]["H"] == pytest.approx(-12.8)
    for m, value in report["V_tilde"]["model"]["effective"].items():
        assert value == pytest.approx(0.0, abs=1e-12), m
    assert report["V_tilde"]["model"]["model"]["3"] == pytest.approx(-0.2)


def test_float32_precision_warning_grows_with_order():
    result = linear_result(n_atoms=6)
    low = diagnostics.precision([result], torch.float64)
    high = diagnostics.precision([result], torch.float32)
    assert "warning" not in low and "float32" in high["warning"]
    noise = [high["orders"][str(m)]["V"] for m in range(2, 7)]
    assert all(b > a for a, b in zip(noise, noise[1:]))
    assert noise[0] == pytest.approx(diagnostics.EPS_FLOAT32 * 2 * 12.8 * 2, rel=1e-6)


def test_markdown_tables(tmp_path):
    result = linear_result()
    report = {
        "units": diagnostics.units([result.parent]),
        "model_info": {"evaluator": "X", "dtype": "float32", "strategy": None, "max_order": None},
        "model": {
            "groups": {
                "all": {
                    "n_parents": 1,
                    "orders": {
                        "2": {
                            "V_tilde": {"mean": 0.2, "std": 0.0},
                            "dV_tilde": {"mean": 0.0, "std": 0.0},
                        }
                    },
                }
            }
        },
        "e1_check": diagnostics.e1_check([result], {"H": -13.0}),
        "baselines": diagnostics.baselines([result], {"H": -13.0}),
        "dimers": {},
        "precision": diagnostics.precision([result], torch.float32),
    }
    write_markdown(tmp_path / "r.md", report, {}, None)
    text = (tmp_path / "r.md").read_text()
    assert "**Warning:**" in text
    header = next(line for line in text.splitlines() if line.startswith(r"| m | \|dṼ/dr\|"))
    assert header.count(" | ") == 5  # escaped |dṼ/dr| keeps six columns


def test_e1_shift_moves_every_order_and_the_report_says_so(tmp_path):
    """A model E_1 off by delta shifts its Ṽ^(m) by (-1)^(m-1) delta (appendix C);
    with the reference E_1 the terms are those of the reference baseline."""
    delta = 0.05
    result = linear_result(e1=-13.0 + delta)  # model E_1 = -12.95, reference -13
    check = diagnostics.e1_check([result], {"H": -13.0})
    assert check["difference"]["H"] == pytest.approx(delta) and "+50.0 meV" in check["warning"]
    own = result.terms.v_tilde()
    (shifted,) = diagnostics.terms_with_e1([result], {"H": -13.0})
    for m in range(2, 6):
        assert float(shifted.v_tilde()[m - 1] - own[m - 1]) == pytest.approx(
            (-1) ** (m - 1) * -delta
        )
    torch.testing.assert_close(shifted.dv_tilde(), result.terms.dv_tilde())
    assert diagnostics.e1_check([linear_result()], {"H": -13.0}).get("warning") is None
    assert diagnostics.terms_with_e1([result], {"He": 1.0}) is None
