"""The paper's appendix-B test as shipped (data/appendix-b/): the FCI/STO-6G
and restricted PBE/cc-pVDZ many-body expansions of the bonded and the
fragmented H8 antiprism."""

from pathlib import Path

import numpy as np
import pytest

from metatrain_mbe.analysis import AnalysisSettings, reference_terms, statistics_section
from metatrain_mbe.data import read_structures

DATA = Path(__file__).parents[2] / "data" / "appendix-b"

#: Ṽ^(m) (eV/atom, m = 2..8) of the bonded antiprism, FCI in STO-6G (equal to
#: the paper's DMRG in the same basis)
BONDED = [-0.7001, 0.7576, -0.8032, 1.0200, -1.611, 2.743, -4.708]


#: the same with restricted PBE in cc-pVDZ, bonded and fragmented
PBE_BONDED = [-1.653, 1.710, -1.987, 2.476, -3.384, 4.969, -7.651]
PBE_FRAGMENTED = [-0.7792, 0.2736, -0.05933, 0.02373, -0.05800, 0.1118, -0.1825]


def orders(file: str) -> dict:
    frames = read_structures(DATA / file)
    terms, parents, _ = reference_terms(frames, AnalysisSettings())
    groups = statistics_section(terms, parents, "geometry")["groups"]
    return {name: group["orders"] for name, group in groups.items()}


@pytest.fixture(scope="module")
def fci_orders():
    return orders("fci.xyz.gz")


def test_the_labels_are_fci_in_sto_6g_without_forces():
    frames = read_structures(DATA / "fci.xyz.gz")
    assert len(frames) == 495  # the atom, 2 parents and 2 x 246 sub-clusters
    assert all("method=fci" in a.info["mbe_theory"] for a in frames)
    assert all("basis=sto-6g" in a.info["mbe_theory"] for a in frames)


def test_the_bonded_antiprism_has_the_paper_s_correlated_terms(fci_orders):
    values = [fci_orders["bonded"][str(m)]["V_tilde"]["mean"] for m in range(2, 9)]
    assert np.allclose(values, BONDED, rtol=2e-3)


def test_between_the_separated_squares_no_term_survives(fci_orders):
    # every sub-cluster of more than four atoms spans both squares
    for m in range(5, 9):
        assert abs(fci_orders["fragmented"][str(m)]["V_tilde"]["mean"]) < 1e-6
    assert abs(fci_orders["fragmented"]["2"]["V_tilde"]["mean"]) > 0.1


def test_restricted_pbe_keeps_a_residual_after_fragmentation():
    pbe = orders("pbe.xyz.gz")
    for geometry, expected in (("bonded", PBE_BONDED), ("fragmented", PBE_FRAGMENTED)):
        values = [pbe[geometry][str(m)]["V_tilde"]["mean"] for m in range(2, 9)]
        assert np.allclose(values, expected, rtol=2e-3)
    # the delocalisation error: m > 4 terms that FCI does not have, with forces
    for m in range(5, 9):
        assert abs(pbe["fragmented"][str(m)]["V_tilde"]["mean"]) > 0.02
        assert pbe["fragmented"][str(m)]["dV_tilde"]["mean"] > 0.1
