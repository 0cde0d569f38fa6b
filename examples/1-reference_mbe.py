r"""
The reference many-body expansion of labelled sets
==================================================

The energy of a cluster A of N atoms splits into one body-ordered term V(S)
per sub-cluster S ⊆ A, the Möbius inverse of the sub-cluster energies E(S):

.. math::

    V(S) = \sum_{T \subseteq S} (-1)^{|S|-|T|} E(T), \qquad E(A) = \sum_{S \subseteq A} V(S).

Given the reference (here DFT) energies and forces of every sub-cluster of a
cluster, its *reference* expansion follows exactly. This example computes it
for the labelled sets the package ships, as ``mtt-mbe analyze`` does::

    mtt-mbe analyze data/hydrogen/subclusters.xyz.gz -o reference --group-by regime

The quantities (paper Eq. 7 and 8, see :doc:`/expansion`): Ṽ^(m), the mean
m-body energy per atom of a cluster (eV/atom), and \|dṼ^(m)/dr\|, the size of the
m-body forces (eV/Å).
"""

# %%
# A first expansion, by hand
# --------------------------
#
# :class:`~metatrain_mbe.expansion.SubsetPlan` lists the sub-clusters of N
# bodies (the empty set first, then order by order);
# :class:`~metatrain_mbe.expansion.BodyOrderTerms` Möbius-inverts their
# energies. Three atoms of −13.6 eV each, bound in pairs and, a little less,
# as a whole:

import os
import shutil
import tempfile
from pathlib import Path

import torch

from metatrain_mbe.expansion import BodyOrderTerms, SubsetPlan

plan = SubsetPlan(3)
# E(S) in plan order: {}, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}, {0,1,2}
energies = torch.tensor([0.0, -13.6, -13.6, -13.6, -31.0, -30.0, -29.0, -45.0], dtype=torch.float64)
terms = BodyOrderTerms.from_energies(0, plan, energies)
print("V(S):        ", [round(v, 3) for v in terms.v.tolist()])
print("sum per order:", [round(v, 3) for v in terms.order_sums().tolist()], "eV")
print("V~(m):       ", [round(v, 3) for v in terms.v_tilde().tolist()], "eV/atom")
print("sum of V(S) = E(A):", round(terms.v.sum().item(), 6), "eV")

# %%
# The 2-body terms are −3.8, −2.8 and −1.8 eV, the 3-body term +4.2 eV: the
# pairs over-count the binding of the whole cluster (−4.2 eV) by that much.
#
# The shipped hydrogen sets
# -------------------------
#
# ``data/hydrogen/subclusters.xyz.gz`` holds complete labelled sets of 100 of
# the 1 000 parents of ``data/hydrogen/parents.xyz.gz``: each parent (8 H atoms,
# ``mbe_parent`` id, ``regime`` ``low`` or ``high`` density), its 246
# sub-clusters of 2 to 7 atoms (``mbe_atoms``: the parent's atom indices) and
# one isolated atom, whose energy is E_1. Energies in eV, forces in eV/Å.
# :func:`~metatrain_mbe.data.read_structures` reads (and checks) it.

from metatrain_mbe.data import ORDER_KEY, PARENT_KEY, read_structures  # noqa: E402

# the repository: the folder above examples/ (sphinx-gallery runs an example
# from its folder, without __file__)
ROOT = (Path(__file__).parent if "__file__" in globals() else Path.cwd()).resolve().parent
frames = read_structures(ROOT / "data" / "hydrogen" / "subclusters.xyz.gz")

sub_clusters = [f for f in frames if ORDER_KEY in f.info]
parents = {int(f.info[PARENT_KEY]) for f in frames if PARENT_KEY in f.info}
print(f"{len(frames)} structures: {len(parents)} parents, {len(sub_clusters)} sub-clusters,")
print(f"{sum(len(f) == 1 and PARENT_KEY not in f.info for f in frames)} isolated atom")

# %%
# The analysis
# ------------
#
# :func:`~metatrain_mbe.interface.reference_analysis.analyze_reference` groups
# the sub-clusters per parent, checks each set is complete, inverts energies
# and forces, and writes what ``mtt-mbe analyze`` writes: the per-sub-cluster
# terms as metatensor TensorMaps (``reference/mbe_energy.mts``,
# ``reference/mbe_summary.mts``), ``report.json``, ``report.md`` and figures.
# :class:`~metatrain_mbe.analysis.AnalysisSettings` says what to expand and how
# to group the statistics; every example writes into a folder of its own.

from metatrain_mbe.analysis import AnalysisSettings  # noqa: E402
from metatrain_mbe.interface.reference_analysis import analyze_reference  # noqa: E402

work = Path(os.environ.get("MBE_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="mbe-example-"))
output = work / "1-reference"
shutil.rmtree(output, ignore_errors=True)
report = analyze_reference(frames, output, AnalysisSettings(group_by="regime"))
print(sorted(p.relative_to(output).as_posix() for p in output.rglob("*") if p.is_file()))

# %%
# ``report.json`` holds every number: E_1, and per group of parents (all, and
# each ``regime``) the mean and standard deviation of Ṽ^(m) and \|dṼ^(m)/dr\| over
# the parents, order by order.

print("E_1:", report["e1"], "eV")
for group, stats in report["reference"]["groups"].items():
    print(f"\n{group} ({stats['n_parents']} parents)")
    print("  m    V~ (eV/atom)   |dV~/dr| (eV/Å)")
    for m, order in stats["orders"].items():
        v, dv = order["V_tilde"], order["dV_tilde"]
        print(f"  {m}  {v['mean']:7.3f} ± {v['std']:.3f}   {dv['mean']:6.2f} ± {dv['std']:.2f}")

# %%
# The terms of these clusters alternate in sign and do not decay with m (they
# grow from m = 4 on, and faster at the higher density): the expansion is exact
# only when complete. This is the expansion a model trained on the clusters has
# to learn if its own terms are to mean anything; trained on whole clusters
# only, it learns another one (:doc:`2-train_and_report`).
#
# The report's figures
# --------------------
#
# The report draws its figures from the report alone
# (:func:`~metatrain_mbe.interface.report.figures.draw_figures`, which
# ``report/figures/*.png`` were written with): Ṽ^(m) and \|dṼ^(m)/dr\| per parent
# and their means, and the dimer curve V^(2)(r) of the labelled pairs.

from metatrain_mbe.interface.report import describe_source  # noqa: E402
from metatrain_mbe.interface.report.figures import draw_figures  # noqa: E402

figures = draw_figures(report, describe_source(report))
print(list(figures))
