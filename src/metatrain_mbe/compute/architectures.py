"""What metatrain-mbe knows of each metatrain architecture, declared once.

A training run (``mtt-mbe train``), a study's findings and the E_1
calibration read this table; adding an architecture is one
:class:`Architecture` in :data:`ARCHITECTURES` plus its ready options file in
``options/``. An architecture that is not declared still trains and is
analysed: it keeps its own one-body term (``mbe.fix_e1`` has nothing to set)
and gets no ``atomic_baseline`` from ``mbe.e1_baseline``.

What the export rewrites is not declared here: an exported ``.pt`` does not
name its architecture, so :mod:`.export` finds the rewrites in the model's
graph (the spherical harmonics of SOAP-BPNN, :mod:`.harmonics`, in any model
that calls them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ARCHITECTURES", "Architecture", "architecture", "family"]


@dataclass(frozen=True)
class Architecture:
    """One metatrain architecture, as metatrain-mbe trains and analyses it.

    :param name: metatrain's ``architecture.name``.
    :param family: the short name a study's findings use (``soap_bpnn``,
        ``pet``, ``mace``: the paper's three families).
    :param options: the ready ``mtt-mbe train`` options file of the
        repository, relative to its root.
    :param one_body_setting: the model hyper-parameter that removes the
        network's own one-body term, as (path under ``architecture.model``,
        value); with it and ``atomic_baseline`` = E_1 the model's energy of an
        isolated atom is E_1 by construction. None: no setting does, and
        ``mbe.fix_e1`` calibrates E_1 after training instead
        (:mod:`.e1_calibration`).
    :param composition_buffer: the end of the checkpoint state-dict key holding
        the composition weights of the energy (shifted by the calibration).
    """

    name: str
    family: str
    options: str
    one_body_setting: tuple[tuple[str, ...], Any] | None = None
    composition_buffer: str = "energy_composition_buffer"

    @property
    def calibrated(self) -> bool:
        """Whether ``mbe.fix_e1`` makes E_1 exact by a shift after training."""
        return self.one_body_setting is None


#: the architectures whose ``atomic_baseline`` is fixed to E_1 by default
#: (``mbe.e1_baseline``), by metatrain name. SOAP-BPNN: the SOAP vector of a
#: lone atom is zero and, without the layer norm, the network has no bias
#: left; MACE: the residual first interaction adds a constant per species;
#: PET: its node heads have biases that no setting removes.
ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "soap_bpnn", "soap_bpnn", "options/soap_bpnn.yaml", (("bpnn", "layernorm"), False)
        ),
        Architecture("pet", "pet", "options/pet.yaml"),
        Architecture(
            "experimental.mace",
            "mace",
            "options/mace.yaml",
            (("interaction_first",), "RealAgnosticInteractionBlock"),
        ),
    )
}


def architecture(name: object) -> Architecture | None:
    """The declaration of metatrain architecture ``name``; None when undeclared."""
    return ARCHITECTURES.get(name) if isinstance(name, str) else None


def family(name: str) -> str:
    """The family of metatrain architecture ``name`` (itself when undeclared)."""
    declared = architecture(name)
    return declared.family if declared else name
