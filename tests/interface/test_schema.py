"""The JSON schemas of `mtt-mbe schema`: the shipped files in schema/ are what
the command writes now, the shipped options and study files validate, and the
schema refuses what `mtt-mbe train` refuses (a misspelled `mbe:` key).

`jsonschema` is a dependency of metatrain, so it is always installed."""

import contextlib
import copy
import io
import json
import sys
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.interface.cli import main
from metatrain_mbe.interface.options import MBEOptions, load_options, parse_options
from metatrain_mbe.interface.schema import _WIDER_INPUTS, SCHEMA_FILES, _value_choices

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "schema"
STUDIES = sorted((ROOT / "options").glob("study*.yaml"))
TRAIN_OPTIONS = sorted(p for p in (ROOT / "options").glob("*.yaml") if p not in STUDIES)


def documentation_modules() -> dict:
    return {k: v for k, v in sys.modules.items() if k.endswith(".documentation")}


@cache
def generated(kind: str) -> str:
    """What `mtt-mbe schema KIND` prints now (made once per test session), in
    this process: it leaves the modules other tests import as they were."""
    before = documentation_modules()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema", kind]) == 0
    assert documentation_modules() == before
    return out.getvalue()


@cache
def validator(kind: str) -> jsonschema.Draft202012Validator:
    """A validator of the shipped schema of ``kind``."""
    schema = json.loads((SHIPPED / SCHEMA_FILES[kind]).read_text())
    return jsonschema.Draft202012Validator(schema)


def mbe_errors(section) -> list[str]:
    """The schema's errors for an `mbe:` section of a valid options file."""
    options = load_options(str(ROOT / "options" / "pet.yaml"))
    options["mbe"] = section
    return [error.message for error in validator("train").iter_errors(options)]


def pydantic_accepts(section) -> bool:
    try:
        parse_options(section)
    except MBEInputError:
        return False
    return True


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_shipped_schema_is_what_the_command_generates(kind):
    shipped = SHIPPED / SCHEMA_FILES[kind]
    assert shipped.read_text() == generated(kind), (
        f"{shipped.relative_to(ROOT)} is stale: regenerate it with "
        f"`mtt-mbe schema {kind} -o schema/{SCHEMA_FILES[kind]} --overwrite`"
    )


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_shipped_schema_is_a_json_schema(kind):
    jsonschema.Draft202012Validator.check_schema(validator(kind).schema)
    assert (SHIPPED / SCHEMA_FILES[kind]).read_bytes().isascii()


@pytest.mark.parametrize("path", TRAIN_OPTIONS, ids=lambda p: p.stem)
def test_every_shipped_train_options_file_validates(path):
    options = load_options(str(path))
    assert [e.message for e in validator("train").iter_errors(options)] == []
    assert "mbe" in options  # the section is checked, not merely allowed


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_shipped_study_file_validates(path):
    assert [e.message for e in validator("study").iter_errors(load_options(str(path)))] == []


@pytest.mark.parametrize(
    "typo, misspelled",
    [
        ({"proportoin": 0.5}, "proportoin"),  # a key of the section
        ({"analysis": {"group_bye": "regime"}}, "group_bye"),  # of a nested section
    ],
)
def test_a_misspelled_mbe_key_fails(typo, misspelled):
    errors = mbe_errors(typo)
    assert len(errors) == 1 and f"'{misspelled}' was unexpected" in errors[0]
    assert not pydantic_accepts(typo)  # as `mtt-mbe train` refuses it


def test_a_misspelled_metatrain_key_fails():
    options = load_options(str(ROOT / "options" / "pet.yaml"))
    broken = copy.deepcopy(options)
    broken["validaton_set"] = broken.pop("validation_set")
    assert list(validator("train").iter_errors(broken))
    broken = copy.deepcopy(options)
    broken["architecture"]["model"]["d_pett"] = 32
    assert list(validator("train").iter_errors(broken))


def test_a_nested_section_may_leave_out_what_the_defaults_fill_in():
    # metatrain's own schema requires every key of `bpnn`, `mtt train` does not
    options = load_options(str(ROOT / "options" / "soap_bpnn.yaml"))
    options["architecture"]["model"]["bpnn"] = {"num_neurons_per_layer": 16}
    assert list(validator("train").iter_errors(options)) == []
    options["architecture"]["model"]["bpnn"] = {"num_neurons_per_layer": "16"}
    assert list(validator("train").iter_errors(options))


#: a value of each other form of `_WIDER_INPUTS`, as it would be written in a file
WIDER_SAMPLES = {
    ("MBEOptions", "subclusters"): ["one.xyz"],
    ("MBEOptions", "orders"): ["2:7", 3],
}


def test_each_wider_input_is_taken_by_the_declarations():
    assert set(WIDER_SAMPLES) == set(_WIDER_INPUTS), "give a sample of each form"
    for (model, field), values in WIDER_SAMPLES.items():
        assert model == MBEOptions.__name__
        validators = MBEOptions.__pydantic_decorators__.field_validators.values()
        assert any(v.info.mode == "before" and field in v.info.fields for v in validators)
        for value in values:
            assert pydantic_accepts({field: value}), (field, value)
            assert mbe_errors({field: value}) == [], (field, value)


def test_each_value_choice_is_what_the_declarations_take():
    assert set(_value_choices()) == {("AnalysisOptions", "batch_layout")}
    for value in _value_choices()["AnalysisOptions", "batch_layout"]:
        assert pydantic_accepts({"analysis": {"batch_layout": value}})
        assert mbe_errors({"analysis": {"batch_layout": value}}) == []
    assert not pydantic_accepts({"analysis": {"batch_layout": "rows"}})
    assert mbe_errors({"analysis": {"batch_layout": "rows"}})


@pytest.mark.parametrize(
    "section",
    [
        {"proportion": 0.1, "seed": 3, "orders": [2, 3], "cutoff": "3:8,4:6"},
        {"subclusters": ["a.xyz", "b.xyz"], "cutoff": 4.5, "e1": {"H": -13.6}},
        {"analysis": {"test_parents": "all", "max_order": 3, "enabled": False}},
        {"proportion": 1.5},
        {"proportion": "0.5"},
        {"subcluster_weight": 0},
        {"fix_e1": "yes"},
        {"seed": True},
        {"analysis": {"test_parents": "some"}},
        {"analysis": {"max_order": 1}},
        {"e1": {"H": "low"}},
    ],
)
def test_the_schema_and_the_declarations_agree(section):
    assert (mbe_errors(section) == []) == pydantic_accepts(section)


def test_the_one_known_disagreement_is_an_energy_given_as_text():
    # docs/schema.md names it: `mtt-mbe` reads the text as a number
    assert pydantic_accepts({"e1": {"H": "-13.6"}})
    assert mbe_errors({"e1": {"H": "-13.6"}})


def test_the_command_writes_a_file_it_does_not_replace_without_overwrite(tmp_path, capsys):
    output = tmp_path / "study.schema.json"
    assert main(["schema", "study", "-o", str(output)]) == 0
    assert output.read_text() == generated("study")
    assert capsys.readouterr().out == f"wrote {output}\n"
    assert main(["schema", "study", "-o", str(output)]) == 2
    assert "already exists; --overwrite replaces it" in capsys.readouterr().err
    assert main(["schema", "study", "-o", str(output), "--overwrite"]) == 0


def test_an_unknown_schema_is_one_line(capsys):
    assert main(["schema", "eval"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "invalid choice: 'eval'" in line
