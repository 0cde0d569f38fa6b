"""The ``mbe:`` section of ``mtt-mbe train`` options, declared once.

Every option is a typed field with its default and a description; validation,
error messages and the documentation table (:func:`options_table`) all come from
these declarations. A bad value or an unknown key is a one-line
:class:`~metatrain_mbe.MBEInputError` naming the key, e.g.
``options.yaml: mbe.proportion: Input should be less than or equal to 1 (got 1.5)``.

Values are never converted to another kind (:class:`OptionsModel`): a number
option takes a number, not ``true`` nor the text ``"0.5"`` (an int field takes
an int only, a float field an int or a float), a bool option takes a bool.

>>> options = parse_options({"subclusters": "subs.xyz", "proportion": 0.1,
...                              "orders": "2:4"})
>>> options.subclusters, options.orders, options.analysis.test_parents
(['subs.xyz'], [2, 3, 4], 'labelled')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ..analysis.settings import AnalysisSettings
from ..compute.architectures import ARCHITECTURES
from ..compute.evaluator import (
    BATCH_LAYOUTS,
    CPU_SUBCLUSTER_BATCH_SIZE,
    DEFAULT_SUBCLUSTER_BATCH_SIZE,
)
from ..cutoffs import Cutoffs
from ..data.sets import check_e1
from ..data.subclusters import parse_orders
from ..errors import MBEInputError
from ..expansion import DEFAULT_MAX_ATOMS

__all__ = [
    "COMPOSITION",
    "CUTOFF",
    "AnalysisOptions",
    "EvalOptions",
    "ExtrapolationOptions",
    "MBEOptions",
    "OptionsModel",
    "ReportOptions",
    "analysis_settings",
    "check_compositions",
    "load_options",
    "options_table",
    "parse_options",
]


class OptionsModel(BaseModel):
    """An options section: unknown keys refused, and every value taken as it is
    given, never converted to another kind (pydantic's strict mode): an int
    field takes an int (not ``true``, ``2.0`` nor ``"2"``), a float field an int
    or a float (not ``true`` nor ``"0.5"``), a bool field a bool, a text field
    text. YAML gives each its kind."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _energy_numbers(e1: Any) -> Any:
    """E_1 energies given as text read as numbers (YAML reads ``H: nan`` as
    text; :func:`check_e1` then names it); a bool is refused, not read as 1 eV."""
    if not isinstance(e1, dict):
        return e1
    for symbol, energy in e1.items():
        if isinstance(energy, bool):
            raise ValueError(f"{symbol}={energy} is not an energy in eV")
    return {symbol: _number(energy) for symbol, energy in e1.items()}


def _number(value: Any) -> Any:
    """``value`` as a float when it is the text of one, else as given."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


#: isolated-atom energies in eV by chemical symbol, finite
E1 = Annotated[dict[str, float], BeforeValidator(_energy_numbers), AfterValidator(check_e1)]


def _check_cutoff(value: Any) -> str | None:
    """A cutoff as :meth:`Cutoffs.parse` reads it, kept as its text (a number as
    that of its float: ``8`` as ``8.0``); a bool (``true`` is no distance) or
    anything else is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is not a cutoff in Å such as 4.5 or 3:8,4:6")
    Cutoffs.parse(value)
    return value if isinstance(value, str) else str(float(value))


#: distance cutoffs per order (Å): one value, or per order as ``3:8,4:6``
CUTOFF = Annotated[str | float | None, BeforeValidator(_check_cutoff)]

_CUTOFF_HELP = (
    "screen sub-clusters by distance (Å): keep S when every two of its bodies are within "
    "R (molecules: their closest atoms); one R, or per order as `3:8,4:6` (order 3 within "
    "8 Å, 4 and above within 6 Å), non-increasing"
)

#: the declared architectures' one-body settings and the calibrated ones, for the help
_ONE_BODY_SETTINGS = "; ".join(
    f"{a.name}: `{'.'.join(a.one_body_setting[0])}: {a.one_body_setting[1]}`"
    for a in ARCHITECTURES.values()
    if a.one_body_setting is not None
)
_CALIBRATED = ", ".join(a.name for a in ARCHITECTURES.values() if a.calibrated)


#: a training composition: ``"all"`` (every training parent of the shared split),
#: or ``{info key: value}`` pairs that a training parent must all carry (text
#: other than ``"all"`` is refused by :func:`check_compositions`)
COMPOSITION = str | dict[str, str | int | float | bool]

#: a composition's name: it names the runs' folders and split files
_COMPOSITION_NAME = re.compile(r"[A-Za-z0-9_-]+")


def check_compositions(value: Any) -> Any:
    """Refuse, in one line naming the composition, a name that is not made of
    letters, digits, ``_`` and ``-``, and a selection that is neither ``all``
    nor a non-empty mapping of info keys to a text, number or bool."""
    if not isinstance(value, dict):
        return value  # pydantic names the type
    for name, selection in value.items():
        if not isinstance(name, str) or not _COMPOSITION_NAME.fullmatch(name):
            raise ValueError(f"{name!r}: a name of letters, digits, _ and - only")
        if selection == "all":
            continue
        if selection == {}:
            raise ValueError(f"{name}: selects by no info key; write `all` for every parent")
        if not isinstance(selection, dict):
            raise ValueError(
                f"{name}: {selection!r} is neither `all` nor a mapping of info keys to "
                "values such as {regime: low}"
            )
        for key, wanted in selection.items():
            if not isinstance(wanted, (str, int, float, bool)):
                raise ValueError(f"{name}.{key}: {wanted!r} is not a text, number or bool")
    return value


class ExtrapolationOptions(OptionsModel):
    """Labelled parents outside the split on which every run of a study measures
    its full-structure RMSE, per group (``extrapolation:`` of a study file)."""

    files: list[str] = Field(
        default_factory=list,
        description="extended XYZ files of labelled parents (energy, forces) that are neither "
        "in the split nor sub-clusters, e.g. 8-mers at densities between the training regimes",
    )
    group_by: str | None = Field(
        None,
        description="info key every structure carries whose values group them (numbers are the "
        "x axis of `extrapolation.png`), e.g. `density` (g/cm³); default: one group `all`",
    )
    training_values: dict[str, float] = Field(
        default_factory=dict,
        description="where the training parents lie on the `group_by` axis, by the value of "
        "their `stratify_by` key, e.g. `{low: 0.46, high: 1.34}`, for parents that do not "
        "carry `group_by`; the finding that errors grow away from the training regime needs it",
    )


class ReportOptions(OptionsModel):
    """What the MBE report of a model covers (shared by ``train`` and ``eval``)."""

    parents: list[int] = Field(
        default_factory=list,
        description="`mbe_parent` ids to analyse (train: besides the test parents; "
        "eval: instead of every parent)",
    )
    max_order: int | None = Field(
        None, ge=2, description="largest sub-cluster size evaluated (default: the whole parent)"
    )
    cutoff: CUTOFF = Field(
        None,
        description=f"{_CUTOFF_HELP} (train default: `mbe.cutoff`)",
    )
    group_by: str | None = Field(
        None,
        description="parent info key to group statistics by (train default: `stratify_by`)",
    )
    output: str | None = Field(
        None,
        description=(
            "report directory (train default: `<model stem>_mbe/` next to the model; eval "
            "default: `mbe/` next to the predictions); holds `model/` and `reference/` "
            "`mbe_energy.mts`, `mbe_summary.mts`, `report.md` and `report.json`"
        ),
    )
    subcluster_batch_size: int = Field(
        DEFAULT_SUBCLUSTER_BATCH_SIZE,
        ge=1,
        description="largest number of sub-clusters per model call (the memory knob; on a "
        f"CPU, calls hold at most {CPU_SUBCLUSTER_BATCH_SIZE}, which run faster there)",
    )
    batch_layout: str = Field(
        "auto",
        description=(
            "sub-clusters of a model call as fragments of one System (`fragments`), one "
            "System each (`systems`), or the faster of the two, timed by a probe on the "
            "first calls of the run, on sub-clusters it needs anyway (`auto`)"
        ),
    )

    @field_validator("batch_layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        if value not in (*BATCH_LAYOUTS, "auto"):
            raise ValueError(f"must be one of {', '.join((*BATCH_LAYOUTS, 'auto'))}")
        return value


class AnalysisOptions(ReportOptions):
    """The MBE analysis run on the trained model (``mbe.analysis`` of ``train``)."""

    enabled: bool = Field(True, description="run the MBE analysis after training")
    test_parents: Literal["labelled", "all", "none"] = Field(
        "labelled",
        description=(
            "which test parents to analyse: those with labelled sub-clusters (model and "
            "reference), all of them (model only where unlabelled), or none"
        ),
    )


class EvalOptions(ReportOptions):
    """The ``mbe:`` section of ``mtt-mbe eval`` options."""

    e1: E1 = Field(
        default_factory=dict,
        description="isolated-atom energies in eV by symbol (default: labelled single atoms)",
    )
    max_atoms: int = Field(
        DEFAULT_MAX_ATOMS,
        ge=1,
        description="largest parent expanded completely (2^N sub-clusters)",
    )
    training_set: str | None = Field(
        None, description="training structures, for the SOAP distance of the sub-clusters"
    )


class MBEOptions(OptionsModel):
    """Sub-cluster augmentation and analysis settings (the ``mbe:`` section)."""

    subclusters: list[str] = Field(
        default_factory=list,
        description=(
            "extended XYZ file(s) of labelled sub-clusters (`mbe_parent`, `mbe_atoms`) and "
            "isolated atoms, e.g. from `mtt-mbe subclusters` then labelling"
        ),
    )
    proportion: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "fraction (0..1) of the available labelled sub-clusters of training parents "
            "injected, whole parents at a time (complete sets only)"
        ),
    )
    orders: list[int] | None = Field(
        None,
        description=(
            "sub-cluster sizes m to inject, in bodies, e.g. `2:7` or `[2, 3]` (default: "
            "2..N-1 atoms, or 1..K-1 molecules for parents with fragments)"
        ),
    )
    cutoff: CUTOFF = Field(
        None,
        description=(
            f"{_CUTOFF_HELP}; a set is complete when it labels every sub-cluster of the "
            "screened family, and only those are injected"
        ),
    )
    stratify_by: str | None = Field(
        None,
        description=(
            "parent info key (e.g. `regime`) whose groups each get their share of the "
            "splits and of the injected sets"
        ),
    )
    seed: int | None = Field(
        None,
        description="seed of the splits and the injection (default: metatrain's `seed`, else 0)",
    )
    subcluster_weight: int = Field(
        1,
        ge=1,
        description=(
            "integer loss weight of the sub-clusters relative to the parents, realised by "
            "repeating each injected sub-cluster in its training set (metatrain 2026.4.1 has "
            "loss weights per target only)"
        ),
    )
    e1_baseline: bool = Field(
        True,
        description=(
            "set metatrain's `atomic_baseline` for `energy` to the reference isolated-atom "
            "energy E_1 (the composition model adds exactly E_1 per atom), unless the options "
            "already set one"
        ),
    )
    fix_e1: bool = Field(
        True,
        description=(
            "make the trained model's isolated-atom energy equal the reference E_1 (needs "
            "`e1_baseline`): an architecture with a setting that removes the network's own "
            f"one-body term gets it ({_ONE_BODY_SETTINGS}), exact by construction; the others "
            f"({_CALIBRATED}) learn it from a training set of their own holding the labelled "
            "isolated atoms (`isolated_atom_copies`), then their composition baseline is "
            "shifted by the residual after training (recorded in `e1_calibration.json` of the "
            "data directory)"
        ),
    )
    isolated_atom_copies: int | None = Field(
        None,
        ge=1,
        description=(
            "copies of each labelled isolated atom in the isolated-atom training set "
            "(`train_isolated.xyz`; validation and test get one copy); default: 20 batches "
            "when `fix_e1` needs the set, else no set"
        ),
    )
    e1: E1 = Field(
        default_factory=dict,
        description="isolated-atom energies in eV by symbol (default: labelled single atoms)",
    )
    analysis: AnalysisOptions = Field(
        default_factory=AnalysisOptions, description="see the `analysis.*` rows"
    )

    @field_validator("subclusters", mode="before")
    @classmethod
    def _one_or_more_files(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("orders", mode="before")
    @classmethod
    def _order_range(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            try:
                return parse_orders(value, smallest=1)
            except MBEInputError as error:
                raise ValueError(f"'{value}' is not an order range such as 2:7") from error
        return value

    @field_validator("orders")
    @classmethod
    def _orders_at_least_one(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or min(value) < 1):
            raise ValueError(f"{value} must list sizes >= 1")
        return None if value is None else sorted(set(value))


def analysis_settings(
    report: ReportOptions, cutoff: str | None = None, **given: Any
) -> AnalysisSettings:
    """The :class:`AnalysisSettings` of a report's options (``mbe.analysis`` of
    ``train``, ``mbe`` of ``eval``): the one place they are built from options.

    :param cutoff: the cutoff when the report sets none (train: ``mbe.cutoff``).
    :param given: the settings that do not come from ``report`` (E_1, label
        keys, ``max_atoms``, a default ``group_by``).
    """
    group_by = given.pop("group_by", None)
    return AnalysisSettings(
        max_order=report.max_order,
        cutoffs=Cutoffs.parse(report.cutoff if report.cutoff is not None else cutoff),
        group_by=report.group_by or group_by,
        subcluster_batch_size=report.subcluster_batch_size,
        batch_layout=report.batch_layout,
        **given,
    )


#: an override ``key=value``: a dotted key of names or list indices, then a value
_OVERRIDE = re.compile(r"[A-Za-z_][\w-]*(\.[\w-]+)*=.*", re.DOTALL)


def _check_base_60(path: Path) -> None:
    """Refuse a scalar of the file that YAML 1.1 (omegaconf's) reads as a
    base-60 number: ``orders: 2:7`` would be 127, ``cutoff: 3:8`` 188."""
    import yaml

    if not path.is_file():
        return  # reported by the loader
    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return  # reported by the loader
    stack = [("", root)]
    while stack:  # in the order of the file
        field, node = stack.pop(0)
        if isinstance(node, yaml.MappingNode):
            stack += [(f"{field}.{k.value}" if field else str(k.value), v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(f"{field}[{i}]", v) for i, v in enumerate(node.value)]
        elif isinstance(node, yaml.ScalarNode) and not node.style:
            _refuse_base_60(str(path), field, node.value)


def _refuse_base_60(source: str, field: str, value: str) -> None:
    """Raise :class:`MBEInputError` when ``value`` is a base-60 number in YAML 1.1."""
    import yaml

    if ":" in value and isinstance(yaml.safe_load(value), (int, float)):
        raise MBEInputError(
            f"{source}: {field}: {value} reads as a base-60 number in YAML; quote it "
            f"('{value}') for a range or per-order cutoffs"
        )


def load_options(path: str, overrides: Sequence[str] = ()) -> dict:
    """An options YAML file merged with ``key=value`` overrides, as plain data.

    :raises MBEInputError: for a missing, unreadable or non-mapping file.
    """
    from omegaconf import OmegaConf

    for override in overrides:
        if not _OVERRIDE.fullmatch(override):
            raise MBEInputError(
                f"-r {override}: not key=value with a dotted key (e.g. -r mbe.proportion=0.1)"
            )
        key, _, value = override.partition("=")
        _refuse_base_60(f"-r {override}", key, value)
    _check_base_60(Path(path))
    try:
        merged = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
        options = OmegaConf.to_container(merged, resolve=True)
    except FileNotFoundError as error:
        raise MBEInputError(f"{path}: no such file") from error
    except Exception as error:  # omegaconf and yaml raise many types
        message = " ".join(str(error).split())
        raise MBEInputError(f"{path}: not a readable options file ({message})") from error
    if not isinstance(options, dict):
        raise MBEInputError(f"{path}: the options must be a mapping")
    return options


def parse_options(
    section: Any,
    source: str = "options",
    model: type[BaseModel] = MBEOptions,
    prefix: str = "mbe",
) -> Any:
    """Validate a section of options (a mapping, or None for all defaults).

    :param section: the section as plain Python data.
    :param source: name of the options file, for error messages.
    :param model: :class:`MBEOptions` (``train``), :class:`EvalOptions` (``eval``)
        or another options model (e.g. a study file's).
    :param prefix: the section's key in its file, put in front of the keys that
        errors name (``""`` for a whole file).
    :raises MBEInputError: one line naming the first offending key.
    """
    try:
        return model.model_validate({} if section is None else section)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
        if first["type"] == "extra_forbidden":
            known = ", ".join(_model_at(model, first["loc"][:-1]).model_fields)
            raise MBEInputError(f"{source}: {key}: unknown key (known: {known})") from error
        message = f"{source}: {key}: {first['msg']} (got {first['input']!r})"
        raise MBEInputError(message) from error


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The (nested) options model that holds the key at ``loc``."""
    for part in loc:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model


def options_table(model: type[BaseModel] = MBEOptions) -> str:
    """The Markdown table of every option of ``model``: key, type, default, meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    rows += _rows(model, "")
    return "\n".join(rows)


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows, nested = [], []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            nested.append((info.annotation, f"{prefix}{name}."))
            continue
        kind = (
            info.annotation.__name__
            if isinstance(info.annotation, type)
            else str(info.annotation).replace("typing.", "").replace("NoneType", "None")
        )
        default = (
            "required"
            if info.is_required()
            else f"`{info.get_default(call_default_factory=True)!r}`"
        )
        rows.append(f"| `{prefix}{name}` | `{kind}` | {default} | {info.description} |")
    for submodel, subprefix in nested:
        rows += _rows(submodel, subprefix)
    return rows
