"""E(S) and dE(S)/dr of every sub-cluster of parent clusters, from a model.

:class:`ModelEvaluator` runs an exported metatomic model (``model.pt``) on
batches of sub-clusters built by :mod:`.batching`: as few model calls as
``batch_size`` allows, forces by one backward pass per call, on the model's
device. With ``strategy="auto"``, the first calls of a run time each batch
layout on sub-clusters the run needs anyway (their results are kept), and the
faster layout serves every later call of the evaluator.
:class:`~.ase_evaluator.CalculatorEvaluator` does the same, one structure at a
time, for any ase calculator. Both return, per parent, what
:meth:`~metatrain_mbe.expansion.BodyOrderTerms.from_energies` takes.

Energies are in eV, gradients in eV/Å, float64 whatever the model's dtype.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import ase
import torch
from metatomic.torch import System

from ..data.io import describe
from ..errors import MBEInputError
from ..expansion import SubsetPlan
from .batching import fragment_separation, fragment_system, parent_pairs, subcluster_systems

__all__ = [
    "BATCH_LAYOUTS",
    "CPU_SUBCLUSTER_BATCH_SIZE",
    "DEFAULT_SUBCLUSTER_BATCH_SIZE",
    "ModelEvaluator",
    "check_atomic_types",
    "load_model",
]

#: batch layouts of :class:`ModelEvaluator`: one System with every sub-cluster
#: as a fragment, or one System per sub-cluster
BATCH_LAYOUTS = ("fragments", "systems")

#: largest number of sub-clusters per model call, by default (the memory cap)
DEFAULT_SUBCLUSTER_BATCH_SIZE = 4096

#: most sub-clusters per model call on a CPU, whatever the cap: larger calls run
#: slower per sub-cluster there (PET of options/pet.yaml, one thread: 0.25 ms at
#: 255, 0.64 ms at 4096), while an accelerator runs calls as large as memory allows
CPU_SUBCLUSTER_BATCH_SIZE = 256

#: untimed calls of a layout before the probe times it, with TorchScript's graph
#: optimisation (its profiling executor optimises a graph after two calls) and
#: without (the first call of the model pays one-off costs)
_WARM_UP = {True: 2, False: 1}


def load_model(path: str | Path, extensions: str | Path | None = None):
    """Load an exported metatomic model, with its extensions.

    :param extensions: directory of compiled extensions (default: the
        ``extensions/`` directory next to the model, when there is one).
    """
    import metatomic.torch as mta

    from .extensions import import_python_packages, recorded_extensions

    path = Path(path)
    if not path.is_file():
        raise MBEInputError(f"{path}: model file not found")
    if extensions is None and (path.parent / "extensions").is_dir():
        extensions = path.parent / "extensions"
    # before the libraries of the extensions folder: sphericart's Python package
    # registers the autograd its library lacks, and is then its only copy loaded
    import_python_packages(recorded_extensions(path))
    try:
        return mta.load_atomistic_model(
            str(path), extensions_directory=None if extensions is None else str(extensions)
        )
    except (RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MBEInputError(f"{path}: not a loadable metatomic model ({first})") from error


def check_atomic_types(frames: list[ase.Atoms], known: set[int]) -> None:
    """Refuse the first structure with atomic types outside ``known`` (the
    model's ``capabilities().atomic_types``), naming its file and frame."""
    for atoms in frames:
        unknown = set(atoms.numbers.tolist()) - known
        if unknown:
            raise MBEInputError(
                f"{describe(atoms)}: atomic types {sorted(unknown)} are not supported by the "
                f"model (it knows {sorted(known)})"
            )


def _window_pairs(pairs: torch.Tensor, window: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """The parent's atom ``pairs`` between atoms of ``window``, renumbered to
    positions in ``window``."""
    local = torch.full((n_atoms,), -1, dtype=torch.long, device=pairs.device)
    local[window] = torch.arange(len(window), device=pairs.device)
    renumbered = local[pairs]
    return renumbered[(renumbered >= 0).all(1)]


class ModelEvaluator:
    """Sub-cluster energies and gradients from batched calls of a metatomic model.

    :param model: exported model (path or loaded ``AtomisticModel``) with an
        ``energy`` output.
    :param extensions: directory of the model's extensions (see :func:`load_model`).
    :param device: torch device (default: the model's preferred available one).
    :param batch_size: largest number of sub-clusters per model call (the
        memory knob; calls never mix more than this many, and on a CPU at most
        :data:`CPU_SUBCLUSTER_BATCH_SIZE`).
    :param strategy: the batch layout, ``"fragments"`` or ``"systems"`` (see
        :data:`BATCH_LAYOUTS`), or ``"auto"``: a probe times each layout on
        one call of real work (after its warm-up calls) and the faster serves
        every later call; until then, calls use ``"fragments"``.

    On a CPU the model runs without TorchScript's graph optimisation: it costs
    two slow first calls (0.6 to 1.6 s each for PET, SOAP-BPNN and MACE) and
    gains nothing there.
    """

    def __init__(
        self,
        model,
        extensions: str | Path | None = None,
        device: str | None = None,
        batch_size: int = DEFAULT_SUBCLUSTER_BATCH_SIZE,
        strategy: str = "auto",
    ):
        import metatomic.torch as mta

        if isinstance(model, (str, Path)):
            model = load_model(model, extensions)
        capabilities = model.capabilities()
        if "energy" not in capabilities.outputs:
            raise MBEInputError("model: it has no 'energy' output")
        if strategy not in (*BATCH_LAYOUTS, "auto"):
            raise ValueError(f"strategy must be one of {BATCH_LAYOUTS} or 'auto', got {strategy!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.device = torch.device(mta.pick_device(capabilities.supported_devices, device))
        self.dtype = getattr(torch, capabilities.dtype)
        self.model = model.to(self.device)
        on_cpu = self.device.type == "cpu"
        #: sub-clusters per model call (at most; the last call of a run holds the rest)
        self.batch_size = min(batch_size, CPU_SUBCLUSTER_BATCH_SIZE) if on_cpu else batch_size
        #: whether TorchScript optimises the model's graph (off on a CPU)
        self.optimize_graph = not on_cpu
        #: the batch layout of the calls: the one asked for or, with ``"auto"``,
        #: the probe's choice once made (``BATCH_LAYOUTS[0]`` until then)
        self.strategy = BATCH_LAYOUTS[0] if strategy == "auto" else strategy
        #: seconds per sub-cluster atom of each layout, as timed by the probe
        self.timings: dict[str, float] = {}
        #: the probe's calls still to run: (layout, timed)
        self._probe: list[tuple[str, bool]] = []
        if strategy == "auto":
            warm_up = _WARM_UP[self.optimize_graph]
            for k, layout in enumerate(BATCH_LAYOUTS):
                # without graph optimisation, only the model's first call is special
                untimed = warm_up if self.optimize_graph or k == 0 else 0
                self._probe += [(layout, False)] * untimed + [(layout, True)]
        self.atomic_types = set(capabilities.atomic_types)
        self.options = list(model.requested_neighbor_lists())
        cutoffs = [o.engine_cutoff("angstrom") for o in self.options]
        #: largest neighbour-list cutoff of the model (Å)
        self.cutoff: float | None = max(cutoffs, default=0.0)
        interaction = capabilities.engine_interaction_range("angstrom")
        self.interaction_range = max(
            [interaction if math.isfinite(interaction) else 0.0, *cutoffs, 1.0]
        )
        self._outputs = {
            kind: mta.ModelEvaluationOptions(
                length_unit="angstrom",
                outputs={"energy": mta.ModelOutput(unit="eV", sample_kind=kind)},
            )
            for kind in ("atom", "system")
        }

    def evaluate(
        self, parents: list[ase.Atoms], plans: list[SubsetPlan]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """See :meth:`.protocol.Evaluator.evaluate`."""
        jobs = [self._job(parent, plan) for parent, plan in zip(parents, plans)]
        results = [
            (
                torch.zeros(plan.n_subsets, dtype=torch.float64),
                torch.zeros((len(plan.atom_rows()[0]), 3), dtype=torch.float64),
            )
            for plan in plans
        ]
        for chunk in self._chunks(plans):
            layout, timed = self._next_call(sum(len(rows) for _, rows in chunk))
            start = time.perf_counter()
            pieces = self._run(jobs, chunk, layout)
            if timed:
                n_atoms = sum(int(plans[k].atom_counts()[rows].sum()) for k, rows in chunk)
                self.timings[layout] = (time.perf_counter() - start) / n_atoms
                if not self._probe:
                    self.strategy = min(self.timings, key=lambda name: self.timings[name])
            for (k, rows), (energies, gradients) in zip(chunk, pieces):
                results[k][0][rows] = energies
                results[k][1][plans[k].rows_of(rows)] = gradients
        return results

    def _next_call(self, n_subclusters: int) -> tuple[str, bool]:
        """Layout of the next call of ``n_subclusters``, and whether the probe times it."""
        if not self._probe:
            return self.strategy, False
        layout, timed = self._probe[0]
        if timed and n_subclusters < self.batch_size:
            return self.strategy, False  # a short call would time its fixed costs
        self._probe.pop(0)
        return layout, timed

    def _job(self, parent: ase.Atoms, plan: SubsetPlan) -> dict:
        check_atomic_types([parent], self.atomic_types)
        positions = torch.tensor(parent.positions, dtype=self.dtype, device=self.device)
        return {
            "types": torch.tensor(parent.numbers, dtype=torch.int32, device=self.device),
            "positions": positions,
            "plan": plan,
            "pairs": [
                parent_pairs(positions, o.engine_cutoff("angstrom"), o.full_list)
                for o in self.options
            ],
            "separation": fragment_separation(positions, self.interaction_range),
        }

    def _chunks(self, plans: list[SubsetPlan]) -> list[list[tuple[int, torch.Tensor]]]:
        """Groups of at most ``batch_size`` sub-clusters, as (parent, plan rows).

        Each parent's rows go by size (atoms), so that a call holds sub-clusters
        of similar sizes: models that pad every atom's neighbours to the largest
        count of the call (PET) waste less on unions of molecules of 3 to 30 atoms.
        """
        chunks: list[list[tuple[int, torch.Tensor]]] = [[]]
        room = self.batch_size
        for k, plan in enumerate(plans):
            # row 0 is the empty set
            rows = torch.argsort(plan.atom_counts()[1:].cpu(), stable=True) + 1
            start = 0
            while start < len(rows):
                if room == 0:
                    chunks.append([])
                    room = self.batch_size
                stop = min(len(rows), start + room)
                chunks[-1].append((k, rows[start:stop]))
                room -= stop - start
                start = stop
        return [chunk for chunk in chunks if chunk]

    def _batch(
        self, jobs: list[dict], chunk: list[tuple[int, torch.Tensor]], strategy: str
    ) -> tuple[list[System], list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
        """The Systems of one model call on ``chunk`` in the layout ``strategy``.

        :return: the Systems; per piece, its batch positions (a leaf requiring
            gradients, Å) and the ``(sub-cluster row, atom of the window)`` of each;
            with ``"fragments"``, per piece the sub-cluster of each batch atom.
        """
        leaves: list[tuple[torch.Tensor, torch.Tensor]] = []
        systems: list[System] = []
        fragments: list[torch.Tensor] = []
        for k, rows in chunk:
            job = jobs[k]
            # the atoms this piece touches: its cost does not grow with the parent
            members = job["plan"].atom_membership(rows).to(self.device)
            window = torch.nonzero(members.any(0)).flatten()
            members = members[:, window]
            pairs = [_window_pairs(p, window, len(job["types"])) for p in job["pairs"]]
            types = job["types"][window]
            found = torch.nonzero(members)
            leaf = job["positions"][window][found[:, 1]].clone().requires_grad_(True)
            leaves.append((leaf, found))
            if strategy == "fragments":
                systems.append(
                    fragment_system(types, leaf, members, pairs, self.options, job["separation"])
                )
                fragments.append(found[:, 0])
            else:
                systems.extend(subcluster_systems(types, leaf, members, pairs, self.options))
        return systems, leaves, fragments

    def _run(
        self, jobs: list[dict], chunk: list[tuple[int, torch.Tensor]], strategy: str
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One model call on ``chunk``: per piece, E(S) of its sub-clusters and
        dE(S)/dr in their atom rows."""
        systems, leaves, fragments = self._batch(jobs, chunk, strategy)
        per_atom = strategy == "fragments"
        with torch.jit.optimized_execution(self.optimize_graph):
            block = self.model(
                systems, self._outputs["atom" if per_atom else "system"], check_consistency=False
            )["energy"].block()
        values = block.values.reshape(-1)
        if per_atom:
            system_of = block.samples.column("system").to(torch.long)
            atom_of = block.samples.column("atom").to(torch.long)
            energies = []
            for s, fragment in enumerate(fragments):
                mine = system_of == s
                n_fragments = int(fragment.max()) + 1
                atoms = torch.zeros(len(fragment), dtype=values.dtype, device=values.device)
                atoms = atoms.index_add(0, atom_of[mine], values[mine])
                energies.append(
                    torch.zeros(n_fragments, dtype=values.dtype, device=values.device).index_add(
                        0, fragment, atoms
                    )
                )
        else:
            order = torch.argsort(block.samples.column("system"))
            energies = list(torch.split(values[order], [len(rows) for _, rows in chunk]))
        grads = torch.autograd.grad(values.sum(), [leaf for leaf, _ in leaves])
        pieces = []
        for energy, grad in zip(energies, grads):
            # rows of torch.nonzero(members): the plan's atom rows of the piece
            pieces.append(
                (energy.detach().to("cpu", torch.float64), grad.detach().to("cpu", torch.float64))
            )
        return pieces
