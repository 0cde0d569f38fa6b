"""Wall-time overhead of `mtt-mbe study` over the same runs made by hand.

Runs a small study on the shipped hydrogen data (options/pet.yaml, the given
epochs, proportions 0 and 0.25, one seed), end to end as a user runs it, then
trains the same runs by hand with `mtt-mbe train` on the options the study wrote
for each run (`DIR/runs/*/*/options.yaml`), and prints both wall times and their
ratio. The study's extra work (the shared split, the full-structure RMSE on the
test parents, study.json, figures and report) counts as overhead; the
breakdown comes from the ``timings_s`` the study writes into study.json.

    OMP_NUM_THREADS=1 python benchmarks/study_overhead.py [--epochs 2]
"""

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def timed(command, cwd):
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        study = {
            "architectures": {"pet": str(ROOT / "options" / "pet.yaml")},
            "proportions": [0.0, 0.25],
            "seeds": [0],
            "stratify_by": "regime",
            "overrides": [f"architecture.training.num_epochs={args.epochs}"],
        }
        (Path(tmp) / "study.yaml").write_text(yaml.safe_dump(study))
        # the options files name the shipped data relative to the repository root
        study_s = timed(["mtt-mbe", "study", f"{tmp}/study.yaml", "-o", f"{tmp}/st"], ROOT)
        hand_s = 0.0
        for options in sorted(Path(tmp, "st", "runs").glob("*/*/options.yaml")):
            out = Path(tmp, "hand", options.parent.name)
            out.mkdir(parents=True)
            hand_s += timed(["mtt-mbe", "train", str(options), "-o", f"{out}/model.pt"], out.parent)
        result = json.loads(Path(tmp, "st", "study.json").read_text())
    timings = result["timings_s"]
    runs = [r["timings_s"] for r in result["runs"]]
    print(f"study, 2 runs ({args.epochs} epochs): {study_s:.1f} s")
    print(f"the same runs by hand:          {hand_s:.1f} s")
    print(f"overhead: {100 * (study_s / hand_s - 1):+.1f} %")
    print(
        f"inside the study: plan {timings['plan']:.1f} s, runs {timings['runs']:.1f} s "
        f"(commands {sum(r['commands'] for r in runs):.1f} s, records "
        f"{sum(r['record'] for r in runs):.1f} s), report {timings['report']:.1f} s; "
        f"start-up and the rest {study_s - sum(timings.values()):.1f} s"
    )


if __name__ == "__main__":
    main()
