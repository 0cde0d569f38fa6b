"""
The paper's experiment as one command: a study
==============================================

``mtt-mbe study STUDY.yaml -o DIR`` trains every combination of architectures,
augmentation proportions, dataset proportions, training compositions and
seeds, all on one split of the parents, measures each model's expansion on the
shared test parents against the reference, and states, finding by finding,
whether the paper's results hold (:doc:`/study`). It resumes: a finished run is
never trained again.

Here the smallest study that still asks the question: PET, without sub-clusters
(proportion 0) and with every labelled set of its training parents (proportion
1), one seed, one epoch, on a subset of the shipped hydrogen data. One epoch
decides nothing, and the verdicts below are those of two barely trained
models; :doc:`/study` shows a study of 27 runs made on a CPU, and what to run
on a GPU at the paper's scale.
"""

# %%
# The data and the study file
# ---------------------------
#
# 60 parents (30 per density regime), 8 of them with their complete labelled
# sets; every architecture's options must read the same files.

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from metatrain_mbe.data import PARENT_KEY, read_structures, write_structures

# the repository: the folder above examples/ (sphinx-gallery runs an example
# from its folder, without __file__)
ROOT = (Path(__file__).parent if "__file__" in globals() else Path.cwd()).resolve().parent
work = Path(os.environ.get("MBE_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="mbe-example-"))
run = work / "5-study"
shutil.rmtree(run, ignore_errors=True)
run.mkdir(parents=True)

hydrogen = ROOT / "data" / "hydrogen"
parents = [*range(0, 30), *range(200, 230)]
with_sets = [*range(0, 4), *range(200, 204)]
for name, ids in [("parents", parents), ("subclusters", with_sets)]:
    frames = read_structures(hydrogen / f"{name}.xyz.gz")
    kept = [f for f in frames if PARENT_KEY not in f.info or int(f.info[PARENT_KEY]) in ids]
    write_structures(run / f"{name}.xyz", kept)
    print(f"{name}.xyz: {len(kept)} structures")

options = yaml.safe_load((ROOT / "options" / "pet.yaml").read_text())
options["training_set"]["systems"] = "parents.xyz"
options["mbe"]["subclusters"] = "subclusters.xyz"
(run / "pet.yaml").write_text(yaml.safe_dump(options, sort_keys=False))

study = {
    "architectures": {"pet": "pet.yaml"},
    "proportions": [0.0, 1.0],
    "seeds": [0],
    "validation_set": 0.1,
    "test_set": 0.3,
    "stratify_by": "regime",
    "overrides": ["architecture.training.num_epochs=1"],
}
(run / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
print((run / "study.yaml").read_text())

# %%
# The study
# ---------
#
# ``--jobs N`` runs N trainings at once, ``--scheduler`` on a Dask cluster;
# here one after the other.

done = subprocess.run(
    ["mtt-mbe", "study", "study.yaml", "-o", "study"], cwd=run, capture_output=True, text=True
)
if done.returncode:
    raise RuntimeError(f"mtt-mbe study failed:\n{done.stderr}")
print(done.stdout.strip().splitlines()[-1])
print(sorted(p.relative_to(run / "study").as_posix() for p in (run / "study").glob("*/*")))

# %%
# Each run is an ordinary ``mtt-mbe train`` in ``study/runs/ARCH/pP-dD-sS/``,
# with its own MBE report; ``study/study.json`` gathers every run and, per
# point, the mean and standard deviation over seeds.

result = json.loads((run / "study" / "study.json").read_text())
for point in result["points"]:
    rmse = point["rmse"]
    print(
        f"{point['architecture']}, proportion {point['proportion']}: on the "
        f"{rmse['n_structures']['mean']:.0f} test parents, energy RMSE "
        f"{1000 * rmse['energy_per_atom']['mean']:.0f} meV/atom, "
        f"force RMSE {rmse['forces']['mean']:.2f} eV/Å"
    )

# %%
# The findings
# ------------
#
# Each finding of the paper, and whether this study reproduces it (``True``),
# contradicts it (``False``) or cannot tell (``None``: e.g. one architecture
# cannot say whether PET resolves more orders than SOAP-BPNN), with the numbers.

for finding in result["findings"]["all"]:
    print(f"[{finding['holds']}] {finding['claim']}\n        {finding['evidence']}")

# %%
# The figures
# -----------
#
# ``study/figures/`` has the paper's layouts: Fig. 3, Ṽ^(m) and \|dṼ^(m)/dr\|
# against m for each proportion with the reference (black crosses), per density
# regime; Fig. 4, the full-structure and sub-cluster RMSE against the
# proportion. Shown here as written.

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

for png in sorted((run / "study" / "figures").glob("*.png")):
    image = matplotlib.image.imread(png)
    dpi = 150
    figure = plt.figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
    figure.figimage(image)
    print(png.name)
