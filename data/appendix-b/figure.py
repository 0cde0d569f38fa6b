"""The paper's Fig. 7 layout from the shipped labels: Ṽ^(m) of the 8-mer
before (left) and after (right) fragmentation, for every labelled method.

    python figure.py fig7.png   # reads fci.xyz.gz and pbe.xyz.gz here
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from metatrain_mbe.analysis import AnalysisSettings, reference_terms, statistics_section  # noqa: E402
from metatrain_mbe.data import read_structures  # noqa: E402

HERE = Path(__file__).parent
#: labelled files and their legend, in the order they are drawn
METHODS = {"pbe.xyz.gz": "restricted PBE / cc-pVDZ", "fci.xyz.gz": "FCI / STO-6G"}


def orders(path: Path) -> dict[str, dict[int, float]]:
    """Ṽ^(m) (eV/atom) by m, per geometry (``bonded``, ``fragmented``)."""
    terms, parents, _ = reference_terms(read_structures(path), AnalysisSettings())
    groups = statistics_section(terms, parents, "geometry")["groups"]
    return {
        name: {int(m): entry["V_tilde"]["mean"] for m, entry in group["orders"].items()}
        for name, group in groups.items()
        if name != "all"
    }


def main(output: str) -> None:
    """Draw both panels into ``output``."""
    figure, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for file, label in METHODS.items():
        if not (HERE / file).exists():
            continue
        values = orders(HERE / file)
        for ax, geometry in zip(axes, ("bonded", "fragmented")):
            if geometry not in values:  # no complete set of this geometry
                continue
            ms = sorted(m for m in values[geometry] if m >= 2)
            ax.plot(ms, [values[geometry][m] for m in ms], "o-", label=label)
    for ax, title in zip(axes, ("before fragmentation", "after (squares 50 Å apart)")):
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="body order m", ylabel="Ṽ^(m) (eV/atom)", title=title)
        ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(output, dpi=150)


if __name__ == "__main__":
    main(sys.argv[1])
