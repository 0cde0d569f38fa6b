"""JSON schemas of the ``mtt-mbe`` input files, for editors and validators.

Both are generated, never written by hand: ``mtt-mbe schema train|study``
prints them and the files shipped in ``schema/`` are its output
(``tests/interface/test_schema.py`` fails when they differ).

- :func:`train_schema`, an ``mtt-mbe train`` options file: metatrain's own
  schema of ``mtt train`` options
  (:func:`metatrain.utils.pydantic.get_train_json_schema`, every architecture
  metatrain ships, as metatrain publishes it) with the ``mbe:`` section that
  :class:`~metatrain_mbe.interface.options.MBEOptions` declares. metatrain's
  generator makes the ``model:`` and ``training:`` sections optional but not
  the sections nested in them (``model.bpnn.num_hidden_layers`` stays
  required), although ``mtt train`` fills every key of an architecture's
  defaults in; here a key is optional wherever those defaults (in the schema,
  as ``default``) hold it.
- :func:`study_schema`, an ``mtt-mbe study`` file
  (:class:`~metatrain_mbe.interface.study.StudyOptions`).

pydantic's schema of a field shows its declared type; where a validator of
the declarations takes more (``mbe.subclusters: one.xyz`` for a list of one
file, ``mbe.orders: 2:7`` for a range) or less (the batch layouts) than that
type, :data:`_WIDER_INPUTS` and :func:`_value_choices` say so, and the tests
check both against the declarations. A schema is meant never to refuse a
file that ``mtt-mbe`` accepts (an E_1 energy given as quoted text, which
``mtt-mbe`` reads as a number, is the exception); ``mtt-mbe`` still checks
what a schema cannot (a finite energy, a cutoff that does not grow with the
order, a YAML 1.1 base-60 number such as an unquoted ``2:7``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

__all__ = ["SCHEMA_FILES", "schema_text", "study_schema", "train_schema"]

#: the file of each schema in the ``schema/`` folder of the repository
SCHEMA_FILES = {"train": "train-options.schema.json", "study": "study.schema.json"}

#: inputs a validator of the declarations takes besides the field's declared
#: type: (model, field) -> JSON schemas of the other forms
_WIDER_INPUTS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("MBEOptions", "subclusters"): [{"type": "string"}],  # one file
    ("MBEOptions", "orders"): [{"type": "string"}, {"type": "integer"}],  # 2:7, or one size
}

#: keys of a property's schema that describe it rather than its type
_ANNOTATION_KEYS = ("title", "description", "default")


def _value_choices() -> dict[tuple[str, str], list[Any]]:
    """The values a text field takes, where a validator refuses others:
    (model, field) -> values."""
    from ..compute.evaluator import BATCH_LAYOUTS

    return {("AnalysisOptions", "batch_layout"): [*BATCH_LAYOUTS, "auto"]}


def train_schema() -> dict[str, Any]:
    """The JSON schema of an ``mtt-mbe train`` options file.

    :raises RuntimeError: when metatrain's schema and metatrain-mbe's declare
        a definition of the same name differently.
    """
    from importlib.metadata import version

    from .options import MBEOptions

    base = _metatrain_schema()
    definitions = base.setdefault("$defs", {})
    _defaults_optional(base["properties"]["architecture"], definitions)
    for name, definition in _model_definitions(MBEOptions).items():
        if definitions.get(name, definition) != definition:
            raise RuntimeError(f"$defs/{name}: declared by metatrain and by metatrain-mbe")
        definitions[name] = definition
    base["properties"]["mbe"] = {
        "$ref": "#/$defs/MBEOptions",
        "description": definitions["MBEOptions"]["description"],
    }
    for key in ("title", "description"):
        base.pop(key, None)
    return {
        "$comment": _comment("train", f"metatrain {version('metatrain')} and metatrain-mbe"),
        "title": "mtt-mbe train options",
        "description": (
            "Options of `mtt-mbe train`: the options of metatrain's `mtt train` and the "
            "`mbe:` section (sub-cluster augmentation and the MBE analysis)."
        ),
        **base,
    }


def _metatrain_schema() -> dict[str, Any]:
    """The schema metatrain publishes of ``mtt train`` options, leaving ``sys.modules`` as
    it was: metatrain's generator loads a second copy of every architecture's
    ``documentation`` module into it, which a later ``import metatrain.pet``
    would then mix with the copy an earlier one holds."""
    from metatrain.utils.pydantic import get_train_json_schema

    documentation = {
        name: module
        for name, module in sys.modules.items()
        if name.startswith("metatrain.") and name.endswith(".documentation")
    }
    try:
        return get_train_json_schema(allow_missing_hypers=True)
    finally:
        for name in [n for n in sys.modules if n.startswith("metatrain.")]:
            if name.endswith(".documentation") and name not in documentation:
                del sys.modules[name]
        sys.modules.update(documentation)


def study_schema() -> dict[str, Any]:
    """The JSON schema of an ``mtt-mbe study`` file."""
    from .study import StudyOptions

    definitions = _model_definitions(StudyOptions)
    schema = definitions.pop("StudyOptions")
    schema.pop("title", None)
    return {
        "$comment": _comment("study", "metatrain-mbe"),
        "title": "mtt-mbe study file",
        **schema,
        "$defs": definitions,
    }


def schema_text(kind: str) -> str:
    """The schema of ``kind`` (``train`` or ``study``) as the text of its file:
    JSON indented by 2, ASCII only (the same bytes on every platform), a
    newline at the end.

    :raises ValueError: for another ``kind``.
    """
    makers = {"train": train_schema, "study": study_schema}
    if kind not in makers:
        raise ValueError(f"'{kind}' is not a schema (known: {', '.join(makers)})")
    return json.dumps(makers[kind](), indent=2, allow_nan=False) + "\n"


def _comment(kind: str, sources: str) -> str:
    return (
        f"Generated by `mtt-mbe schema {kind}` from the declarations of {sources}; "
        "regenerate it rather than edit it."
    )


def _model_definitions(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """The JSON schema of ``model`` and of the models it holds, by name, with
    the forms of :data:`_WIDER_INPUTS` and :func:`_value_choices`, and each
    nested section described by its model's docstring (pydantic gives it the
    field's description, which points to the rows of the options table)."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    definitions: dict[str, dict[str, Any]] = schema.pop("$defs", {})
    definitions[model.__name__] = schema
    choices = _value_choices()
    for name, definition in definitions.items():
        for field, prop in definition.get("properties", {}).items():
            if (name, field) in _WIDER_INPUTS:
                _widen(prop, _WIDER_INPUTS[name, field])
            if (name, field) in choices:
                prop["enum"] = choices[name, field]
            nested = definitions.get(prop.get("$ref", "").removeprefix("#/$defs/"))
            if nested is not None and "description" in nested:
                prop["description"] = nested["description"]
    return definitions


def _widen(prop: dict[str, Any], forms: list[dict[str, Any]]) -> None:
    """Make ``prop`` take ``forms`` too: its annotations, then ``anyOf`` the
    forms and its own type."""
    annotations = {key: prop.pop(key) for key in _ANNOTATION_KEYS if key in prop}
    own = prop.pop("anyOf", None) or [dict(prop)]
    prop.clear()
    prop.update(annotations, anyOf=[*forms, *own])


def _defaults_optional(architecture: dict[str, Any], definitions: dict[str, Any]) -> None:
    """Make optional, in every architecture of metatrain's schema, each key of
    ``model:`` and ``training:`` that the architecture's defaults hold (the
    ``default`` of those sections), at every depth."""
    for choice in architecture.get("anyOf", [architecture]):
        options = _resolved(choice, definitions)
        for section in ("model", "training"):
            prop = options.get("properties", {}).get(section)
            if prop is not None:
                _drop_defaulted(prop, prop.get("default"), definitions)


def _resolved(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """The definition a ``$ref`` node points to, or the node itself."""
    ref = node.get("$ref")
    return definitions[ref.removeprefix("#/$defs/")] if ref else node


def _drop_defaulted(node: dict[str, Any], defaults: Any, definitions: dict[str, Any]) -> None:
    """Remove from the required keys of ``node`` (and of the alternatives and
    definitions it points to) those that ``defaults`` holds, then do the same
    for each property that ``defaults`` holds a mapping for. A definition used
    at several places loses the keys any of them has a default for."""
    if not isinstance(defaults, dict):
        return
    if "$ref" in node:
        _drop_defaulted(_resolved(node, definitions), defaults, definitions)
    for key in ("anyOf", "oneOf", "allOf"):
        for alternative in node.get(key, []):
            _drop_defaulted(alternative, defaults, definitions)
    if "required" in node:
        node["required"] = [key for key in node["required"] if key not in defaults]
        if not node["required"]:
            del node["required"]
    for key, prop in node.get("properties", {}).items():
        if key in defaults:
            _drop_defaulted(prop, defaults[key], definitions)
