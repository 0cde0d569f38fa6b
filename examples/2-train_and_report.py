"""
Training with sub-cluster augmentation, and its MBE report
==========================================================

``mtt-mbe train`` is metatrain's ``mtt train`` with an ``mbe:`` section in the
options (:doc:`/training`): it splits the parents, injects a proportion of the
labelled sub-cluster sets of the *training* parents into the training set
(every sub-cluster follows its parent, so none of a test parent is trained
on), fixes the model's isolated-atom energy E_1 to the reference one, trains
with metatrain, and writes the MBE report of the trained model on the test
parents that have labelled sets.

Here: PET with the ready options ``options/pet.yaml`` (a small network, float64)
on a subset of the shipped hydrogen clusters, for 2 epochs instead of 20, so
that it runs in well under a minute on one CPU core. The model is far from
converged, and the report says so; what matters here is what the command
writes and how to read it.
"""

# %%
# A subset of the shipped data
# ----------------------------
#
# 80 parents (40 per density regime), of which 16 have their complete labelled
# set of sub-clusters in the file of sub-clusters, with the isolated atom.

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
run = work / "2-train"
shutil.rmtree(run, ignore_errors=True)
run.mkdir(parents=True)

PARENTS = [*range(0, 40), *range(200, 240)]
WITH_SETS = [*range(0, 8), *range(200, 208)]


def subset(source: Path, target: Path, ids: list[int]) -> int:
    """Write the structures of ``source`` whose parent is in ``ids`` (and the
    isolated atoms) to ``target``; return how many."""
    frames = [
        f
        for f in read_structures(source)
        if PARENT_KEY not in f.info or int(f.info[PARENT_KEY]) in ids
    ]
    write_structures(target, frames)
    return len(frames)


hydrogen = ROOT / "data" / "hydrogen"
print("parents.xyz:", subset(hydrogen / "parents.xyz.gz", run / "parents.xyz", PARENTS), "parents")
print(
    "subclusters.xyz:",
    subset(hydrogen / "subclusters.xyz.gz", run / "subclusters.xyz", WITH_SETS),
    "structures (16 sets of a parent and its 246 sub-clusters, and the isolated atom)",
)

# %%
# The options
# -----------
#
# ``options/pet.yaml`` as shipped, reading the subset instead; the ``mbe:``
# section injects half of the available sets (``proportion: 0.5``), splits and
# groups the statistics by ``regime``.

options = yaml.safe_load((ROOT / "options" / "pet.yaml").read_text())
options["training_set"]["systems"] = "parents.xyz"
options["mbe"]["subclusters"] = "subclusters.xyz"
(run / "options.yaml").write_text(yaml.safe_dump(options, sort_keys=False))
print(yaml.safe_dump({"mbe": options["mbe"]}, sort_keys=False))

# %%
# Training
# --------
#
# Any metatrain option can be overridden on the command line with ``-r``, as
# with ``mtt train``; here the number of epochs. The command runs in its own
# folder: like ``mtt train``, it keeps checkpoints and logs in
# ``outputs/DATE/TIME/`` under the working directory.

done = subprocess.run(
    [
        "mtt-mbe",
        "train",
        "options.yaml",
        "-o",
        "model.pt",
        "-r",
        "architecture.training.num_epochs=2",
    ],
    cwd=run,
    capture_output=True,
    text=True,
)
if done.returncode:
    raise RuntimeError(f"mtt-mbe train failed:\n{done.stderr}")
# the log (metatrain's and mtt-mbe's lines) is on stdout; show the lines of
# mtt-mbe and of the epochs, and the command's last word
log = done.stdout.splitlines()
for line in log:
    if "] - mtt-mbe:" in line or "] - Epoch:" in line:
        print(line.split("] - ", 1)[1])
print("\n".join(log[-2:]))

# %%
# What it wrote, next to the model: ``model_data/`` (the data sets metatrain
# trained on, ``split.json`` with the ids of each split and what was injected),
# ``model_options.yaml`` (plain metatrain options: ``mtt train
# model_options.yaml`` repeats the run without metatrain-mbe) and the report
# ``model_mbe/``.

print(sorted(p.name for p in run.iterdir()))
split = json.loads((run / "model_data" / "split.json").read_text())
print({key: value for key, value in split.items() if not isinstance(value, list)})

# %%
# The report
# ----------
#
# ``model_mbe/report.json`` (and ``report.md``, its figures, a chemiscope view
# of the parents) compares the model's expansion on the test parents with the
# reference one. Every model term is a Möbius inverse of the model's energies
# of the same sub-clusters, evaluated in batches. First the model's E_1: a
# model E_1 off by δ shifts every Ṽ^(m) by ±δ, so it is fixed (for PET, by a
# set of isolated atoms in training and a shift of the composition baseline
# after it).

report = json.loads((run / "model_mbe" / "report.json").read_text())
print("E_1 model - reference (eV):", report["e1_check"]["difference"])
print("test parents analysed:", report["model"]["parents"])

rows = zip(
    report["model"]["groups"]["all"]["orders"].items(),
    report["reference"]["groups"]["all"]["orders"].values(),
)
print("\n  m   V~ model  V~ reference   |dV~/dr| model  |dV~/dr| reference")
for (m, model), reference in rows:
    print(
        f"  {m}  {model['V_tilde']['mean']:8.3f}  {reference['V_tilde']['mean']:8.3f}"
        f"       {model['dV_tilde']['mean']:8.2f}        {reference['dV_tilde']['mean']:8.2f}"
    )

# %%
# The report flags what makes its numbers less telling; here, few test parents
# and a model that is undertrained (its error on the whole clusters is a large
# fraction of their spread).

for warning in report["flags"]["warnings"]:
    print("-", warning)

# %%
# Its figures: the terms per order, model against reference; the per-order RMSE
# of the model's E(S) on the labelled sub-clusters; the terms with each choice of
# isolated-atom baseline; the dimer curve; and the SOAP distance of the
# sub-clusters to the training set.

from metatrain_mbe.interface.report import describe_source  # noqa: E402
from metatrain_mbe.interface.report.figures import draw_figures  # noqa: E402

figures = draw_figures(report, describe_source(report))
print(list(figures))

# %%
# With more epochs, more parents and proportions from 0 to 1, this is the
# paper's experiment: :doc:`5-study` runs it as one command, and
# :doc:`/study` shows a larger study of the shipped data. The trained model is
# exported for molecular dynamics in :doc:`3-export_and_md`.
