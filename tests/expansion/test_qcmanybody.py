"""Agreement with an independent MBE implementation: QCManyBody (nocp)."""

import numpy as np
import pytest
import torch

qcmanybody = pytest.importorskip("qcmanybody")
from qcelemental.models import Molecule  # noqa: E402
from qcmanybody.utils import delabeler  # noqa: E402

from metatrain_mbe.expansion import SubsetPlan, moebius_transform, order_sums  # noqa: E402


@pytest.mark.parametrize("n", [2, 3, 5, 8])
@pytest.mark.parametrize("fast", [True, False])
def test_order_sums_agree_with_qcmanybody(n, fast):
    """Both paths (the bitmask subset transform and the passes of any family)."""
    rng = np.random.default_rng(100 + n)
    molecule = Molecule(
        symbols=["He"] * n,
        geometry=rng.normal(size=(n, 3)) * 5,
        fragments=[[i] for i in range(n)],
    )
    core = qcmanybody.ManyBodyCore(
        molecule,
        bsse_type=["nocp"],
        levels={k: "model" for k in range(1, n + 1)},
        return_total_data=True,
        supersystem_ie_only=False,
        embedding_charges={},
    )
    plan = SubsetPlan(n)
    energy = torch.zeros(plan.n_subsets, dtype=torch.float64)
    results = {}
    for _, label, _ in core.iterate_molecules():
        _, real, _ = delabeler(label)
        value = float(rng.normal() * 3 - 0.5 * len(real))
        energy[plan.find([i - 1 for i in real])] = value
        results[label] = {"energy": value}
    assert (energy[1:] != 0).all(), "qcmanybody must ask for every sub-cluster"
    through = core.analyze(results)["energy_body_dict"]

    sums = order_sums(moebius_transform(energy, plan, fast=fast), plan)
    cumulative = torch.cumsum(sums[1:], 0)
    for k in range(1, n + 1):
        assert cumulative[k - 1].item() == pytest.approx(through[f"{k}nocp"], abs=1e-10)
