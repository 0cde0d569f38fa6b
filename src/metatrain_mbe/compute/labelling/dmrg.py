"""DMRG energies with block2: the density-matrix renormalisation group, the
correlated reference of the paper's Fig. 1 and 7 (hydrogen clusters in
STO-6G), for orbital spaces beyond FCI.

block2 (``pip install block2``, or ``metatrain-mbe[dmrg]``) is imported only
when a DMRG energy is computed; without it :func:`dmrg_energy` refuses in one
line. The Hamiltonian is built in the orbitals of an RHF (ROHF for 2S > 0)
calculation (``pyblock2._pyscf.ao2mo.integrals.get_rhf_integrals``), ordered
by block2's Fiedler reordering, and solved spin-adapted
(``SymmetryTypes.SU2``): the state is the lowest of total spin S = 2S / 2
exactly, as FCI's (:mod:`.fci`), with no spin contamination. One thread,
block2's default stack memory, and a fresh scratch folder per calculation
under ``scratch`` (default the system's temporary folder), removed afterwards,
so worker processes never share one.

Sweep schedule (two-site DMRG) for a final bond dimension M (``bond_dim``)
and at most N sweeps (``sweeps``, at least :data:`MIN_SWEEPS`): sweeps 1-4
at M/4 with noise 1e-4, sweeps 5-8 at M/2 with noise 1e-5, then M without
noise (:func:`schedule`); Davidson threshold 1e-10. The sweeps stop once the
energy of a noiseless sweep differs from the previous sweep's by less than
:data:`ENERGY_TOLERANCE`, else after N sweeps; a calculation whose last two
sweeps still differ by more than :data:`CONVERGED` fails (below M's exact
size the energy of two-site DMRG moves by about 1e-7 Ha from sweep to sweep:
H8 in STO-6G at M = 16). The strategy text records the sweeps done, the largest
discarded weight of the last sweep and its energy change, e.g.
``dmrg M=250: 9 sweeps, discarded weight 6.9e-21, last change 2.1e-13 Ha``.

Accuracy and cost: exact (FCI) once M reaches the largest bond dimension of
the orbital space (H8 in STO-6G at M = 250: FCI to 4e-11 eV, 2.6 s instead of
21 s), a variational upper bound below it, of error about proportional to
the discarded weight; a very small M can stall in a higher state with a
discarded weight of zero, so check convergence in M. Cost grows as
O(M^3 k^3) for k orbitals. Energies only: no forces.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile

import numpy as np

from ...errors import MBEInputError

__all__ = [
    "BOND_DIM",
    "CONVERGED",
    "ENERGY_TOLERANCE",
    "MIN_SWEEPS",
    "SWEEPS",
    "check_options",
    "dmrg_energy",
    "require_block2",
    "schedule",
]

#: the default final bond dimension M
BOND_DIM = 250
#: the default most sweeps N
SWEEPS = 20
#: sweeps of the schedule before the first noiseless one, plus that one
MIN_SWEEPS = 9
#: energy change (Ha) between two sweeps below which the sweeps stop
ENERGY_TOLERANCE = 1e-9
#: largest energy change (Ha) between the last two sweeps of a DMRG kept
CONVERGED = 1e-6
#: Davidson threshold of every sweep
DAVIDSON_TOLERANCE = 1e-10
#: seed of block2's random initial MPS (the same MPS for every calculation)
SEED = 1234


def schedule(bond_dim: int) -> tuple[list[int], list[float]]:
    """Bond dimensions and noises of the first sweeps (see the module doc);
    block2 repeats the last of each for the sweeps after.

    >>> bond_dims, noises = schedule(250)
    >>> bond_dims
    [62, 62, 62, 62, 125, 125, 125, 125, 250]
    >>> noises[::4]
    [0.0001, 1e-05, 0.0]
    """
    bond_dims = [max(1, bond_dim // 4)] * 4 + [max(1, bond_dim // 2)] * 4 + [bond_dim]
    return bond_dims, [1e-4] * 4 + [1e-5] * 4 + [0.0]


def require_block2() -> None:
    """Refuse DMRG without block2, before any calculation.

    :raises MBEInputError: one line, when ``pyblock2`` cannot be found.
    """
    if importlib.util.find_spec("pyblock2") is None:
        raise MBEInputError("--method dmrg needs block2 (pip install block2)")


def check_options(bond_dim: int, sweeps: int, scratch: str | None) -> None:
    """Refuse a bond dimension below 1, fewer sweeps than :data:`MIN_SWEEPS`
    and a scratch folder that does not exist.

    :raises ValueError: one line naming the setting.
    """
    if not isinstance(bond_dim, int) or bond_dim < 1:
        raise ValueError(f"bond_dim must be an integer >= 1, got {bond_dim!r}")
    if not isinstance(sweeps, int) or sweeps < MIN_SWEEPS:
        raise ValueError(
            f"sweeps must be an integer >= {MIN_SWEEPS} (the schedule's warm-up and one "
            f"noiseless sweep), got {sweeps!r}"
        )
    if scratch is not None and not os.path.isdir(scratch):
        raise ValueError(f"scratch: {scratch} is not a folder")


def dmrg_energy(
    mol, bond_dim: int = BOND_DIM, sweeps: int = SWEEPS, scratch: str | None = None
) -> tuple[float, str]:
    """The DMRG energy (Ha, nuclear repulsion included) of the lowest state of
    spin ``mol.spin`` / 2 of a PySCF molecule, and the strategy text.

    :param bond_dim: final bond dimension M.
    :param sweeps: most sweeps N (at least :data:`MIN_SWEEPS`).
    :param scratch: folder under which the calculation's scratch folder is
        made (None: the system's temporary folder).
    :raises MBEInputError: when block2 is not installed (:func:`require_block2`).
    :raises ValueError: for options :func:`check_options` refuses.
    :raises RuntimeError: one line, when the sweeps do not converge.
    """
    require_block2()
    check_options(bond_dim, sweeps, scratch)
    from pyblock2._pyscf.ao2mo import integrals
    from pyblock2.driver.core import DMRGDriver, SymmetryTypes
    from pyscf import scf

    mf = scf.RHF(mol) if mol.spin == 0 else scf.ROHF(mol)
    mf.verbose = 0
    mf.kernel()
    if mol.nao < 2:  # one orbital: one configuration, which block2 cannot sweep
        return float(mf.e_tot), f"dmrg M={bond_dim}: one orbital, its single configuration"
    norb, electrons, spin, core, h1, eri, orb_sym = integrals.get_rhf_integrals(mf, g2e_symm=1)
    bond_dims, noises = schedule(bond_dim)
    with tempfile.TemporaryDirectory(prefix="mbe-dmrg-", dir=scratch) as folder:
        driver = DMRGDriver(scratch=folder, symm_type=SymmetryTypes.SU2, n_threads=1)
        try:
            driver.bw.b.Random.rand_seed(SEED)
            driver.initialize_system(n_sites=norb, n_elec=electrons, spin=spin, orb_sym=orb_sym)
            order = driver.orbital_reordering(h1, eri)
            h1 = h1[np.ix_(order, order)]
            eri = eri[np.ix_(order, order, order, order)]
            mpo = driver.get_qc_mpo(h1e=h1, g2e=eri, ecore=core, iprint=0)
            ket = driver.get_random_mps(tag="GS", bond_dim=bond_dims[0], nroots=1)
            energy = driver.dmrg(
                mpo,
                ket,
                n_sweeps=sweeps,
                bond_dims=bond_dims,
                noises=noises,
                thrds=[DAVIDSON_TOLERANCE] * len(bond_dims),
                tol=ENERGY_TOLERANCE,
                iprint=0,
            )
            _, discarded, energies = driver.get_dmrg_results()
        finally:
            driver.finalize()
    change = abs(float(energies[-1][0] - energies[-2][0]))
    strategy = (
        f"dmrg M={bond_dim}: {len(energies)} sweeps, discarded weight {discarded[-1]:.1e}, "
        f"last change {change:.1e} Ha"
    )
    if change > CONVERGED:
        raise RuntimeError(f"DMRG not converged ({strategy}); raise --sweeps or --bond-dim")
    return float(energy), strategy
