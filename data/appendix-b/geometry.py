"""The paper's appendix-B clusters (Chong et al., J. Chem. Phys. 2026).

- ``bonded`` (mbe_parent 0): a square of four H atoms with 1.4 Å sides and a
  copy rotated by 45° about its axis and shifted 1.1773 Å along it, a square
  antiprism in which every atom has four neighbours 1.400 Å away (two in its
  square, two in the other);
- ``fragmented`` (mbe_parent 1): the same two squares 50 Å further apart, where
  every term V(S) of a sub-cluster spanning both squares must vanish.

    python geometry.py parents.xyz
"""

import sys

import ase
import ase.io
import numpy as np

SIDE = 1.4  # Å
SHIFT = 1.1773  # Å, along the axis: all eight atoms then have four neighbours at 1.400 Å
APART = 50.0  # Å, added to the shift for the fragmented cluster


def antiprism(shift: float) -> ase.Atoms:
    """The two squares, the second rotated by 45° and ``shift`` (Å) above the first."""
    radius = SIDE / np.sqrt(2)
    angles = np.arange(4) * np.pi / 2
    lower = [[radius * np.cos(t), radius * np.sin(t), 0.0] for t in angles]
    upper = [
        [radius * np.cos(t + np.pi / 4), radius * np.sin(t + np.pi / 4), shift] for t in angles
    ]
    return ase.Atoms("H8", positions=lower + upper)


if __name__ == "__main__":
    parents = []
    for pid, (name, shift) in enumerate([("bonded", SHIFT), ("fragmented", SHIFT + APART)]):
        atoms = antiprism(shift)
        atoms.info.update(mbe_parent=pid, geometry=name)
        parents.append(atoms)
    distances = parents[0].get_all_distances()
    assert np.allclose(np.sort(distances, axis=1)[:, 1:5], SIDE, atol=1e-3)
    ase.io.write(sys.argv[1], parents, format="extxyz")
