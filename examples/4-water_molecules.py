"""
Molecules as bodies: the 2- and 3-body energies of water
========================================================

The many-body expansion of a water cluster counts waters, not atoms: V(S) for
a set S of whole molecules, the one-body terms being each water's energy in the
cluster's geometry. A structure declares its molecules with the per-atom array
``mbe_fragment`` (the molecule of each atom), and every command then expands
over molecules (:doc:`/water`; the conventions are in :doc:`/expansion`).

The data: ``data/water/`` holds (H2O)4, (H2O)5 and (H2O)6 clusters from
flexible-TIP3P dynamics, labelled with PySCF (PBE/6-31G*): 150 parents and 15
complete labelled sets (every union of 1 .. n−1 waters of the parent).
"""

# %%
# Molecules from bonding
# ----------------------
#
# ``mtt-mbe fragments clusters.xyz -o parents.xyz`` assigns ``mbe_fragment``
# from covalent radii (:func:`~metatrain_mbe.data.fragments.fragment_structures`);
# on the shipped parents it finds the molecules they declare.

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from metatrain_mbe.data import FRAGMENT_KEY, ORDER_KEY, enumerate_subclusters, read_structures
from metatrain_mbe.data.fragments import fragment_structures

# the repository: the folder above examples/ (sphinx-gallery runs an example
# from its folder, without __file__)
ROOT = (Path(__file__).parent if "__file__" in globals() else Path.cwd()).resolve().parent
water = ROOT / "data" / "water"
parents = read_structures(water / "parents.xyz.gz")
print(len(parents), "parents:", dict(Counter(int(p.info["n_water"]) for p in parents)))

bare = [p.copy() for p in parents]
for p in bare:
    del p.arrays[FRAGMENT_KEY]
found = fragment_structures(bare)
print(
    "same molecules as declared:",
    all(
        np.array_equal(f.arrays[FRAGMENT_KEY], p.arrays[FRAGMENT_KEY])
        for f, p in zip(found, parents)
    ),
)
print(parents[0].get_chemical_symbols(), parents[0].arrays[FRAGMENT_KEY])

# %%
# The sub-clusters of a parent are unions of whole molecules
# (``mtt-mbe subclusters parents.xyz --ids 0 -o to-label.xyz``): for a water
# tetramer, 4 monomers, 6 dimers and 4 trimers, each to be labelled with any code
# (``mtt-mbe label``, :doc:`/labelling`).

subs = enumerate_subclusters([parents[0]])
orders = Counter(s.info[ORDER_KEY] for s in subs)
print({f"{m} waters": count for m, count in sorted(orders.items())})
print([s.get_chemical_formula() for s in subs[:5]])

# %%
# The reference expansion over waters
# -----------------------------------
#
# As for atoms (:doc:`1-reference_mbe`), grouped by cluster size. Ṽ^(m) is now
# in eV per water; there are no isolated-atom labels, since the one-body terms
# are the labelled monomers of each set.

from metatrain_mbe.analysis import AnalysisSettings  # noqa: E402
from metatrain_mbe.interface.reference_analysis import analyze_reference  # noqa: E402

work = Path(os.environ.get("MBE_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="mbe-example-"))
run = work / "4-water"
shutil.rmtree(run, ignore_errors=True)
labelled = read_structures(water / "subclusters.xyz.gz")
report = analyze_reference(labelled, run / "reference", AnalysisSettings(group_by="n_water"))

print("units:", report["units"])
for group, stats in sorted(report["reference"]["groups"].items()):
    v = {m: round(o["V_tilde"]["mean"], 4) for m, o in stats["orders"].items()}
    print(f"{group:>4} ({stats['n_parents']} parents)  V~(m), eV/water: {v}")

# %%
# The expansion converges fast, as water's does: Ṽ^(2) of a few hundredths of an
# eV per water, the cooperative (negative) Ṽ^(3) several times smaller, Ṽ^(4)
# smaller again. The report's figures show the terms per parent and the water
# dimer's V^(2) against the distance of the two centres of mass.

from metatrain_mbe.interface.report import describe_source  # noqa: E402
from metatrain_mbe.interface.report.figures import draw_figures  # noqa: E402

figures = draw_figures(report, describe_source(report))
print(list(figures))

# %%
# A model over waters
# -------------------
#
# ``options/water-pet.yaml`` trains PET on these clusters with half of the
# training parents' sets injected; the bodies are waters, so there is no
# isolated-atom energy to fix (``mbe.e1_baseline: false``, ``mbe.fix_e1:
# false``) and metatrain fits its own per-species baseline. Two epochs here
# (100 in the options), so its terms are not yet water's; :doc:`/water` shows a
# trained one against DFT, without and with sub-clusters.

import yaml  # noqa: E402

options = yaml.safe_load((ROOT / "options" / "water-pet.yaml").read_text())
options["training_set"]["systems"] = str(water / "parents.xyz.gz")
options["mbe"]["subclusters"] = str(water / "subclusters.xyz.gz")
(run / "options.yaml").write_text(yaml.safe_dump(options, sort_keys=False))


def mtt_mbe(*args: str) -> str:
    """Run ``mtt-mbe ARGS`` in this example's folder; its last line of output."""
    done = subprocess.run(["mtt-mbe", *args], cwd=run, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"mtt-mbe {args[0]} failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


epochs = "architecture.training.num_epochs=2"
print(mtt_mbe("train", "options.yaml", "-o", "model.pt", "-r", epochs))

# %%
# ``mtt-mbe export --bodies molecules`` makes the exported model find the
# molecules itself, by the bonding rule of ``mtt-mbe fragments``, in every
# system an engine gives it (LAMMPS passes no per-atom arrays), so that
# ``mbe::energy_by_order`` counts waters.

print(mtt_mbe("export", "model.pt", "-o", "model-mbe.pt", "--bodies", "molecules"))

from metatomic.torch import ModelOutput  # noqa: E402
from metatomic_ase import MetatomicCalculator  # noqa: E402

calculator = MetatomicCalculator(str(run / "model-mbe.pt"))
hexamer = next(p for p in parents if p.info["n_water"] == 6)
results = calculator.run_model(
    hexamer, {"mbe::energy_by_order": ModelOutput(unit="eV", sample_kind="system")}
)
by_order = results["mbe::energy_by_order"].block()
print("body orders:", by_order.properties.column("body_order").tolist())
print("sums over waters (eV):", [round(v, 4) for v in by_order.values[0].tolist()])
print(
    f"their sum {by_order.values.sum().item():.6f} eV, "
    f"the model's energy {calculator.get_potential_energy(hexamer):.6f} eV"
)
