import pytest

from metatrain_mbe import MBEInputError
from metatrain_mbe.interface.options import MBEOptions, options_table, parse_options


def test_defaults_and_normalisation():
    options = parse_options({"subclusters": "a.xyz", "orders": "2:4,6"})
    assert options.subclusters == ["a.xyz"]
    assert options.orders == [2, 3, 4, 6]
    assert options.proportion == 1.0 and options.subcluster_weight == 1
    assert options.analysis.enabled and options.analysis.test_parents == "labelled"
    assert parse_options(None) == MBEOptions()
    assert parse_options({"orders": [3, 2, 3]}).orders == [2, 3]


@pytest.mark.parametrize(
    "section, message",
    [
        ({"proportion": 1.5}, "o.yaml: mbe.proportion: Input should be less than or equal to 1"),
        ({"proportion": -0.1}, "mbe.proportion: Input should be greater than or equal to 0"),
        ({"proportion": "lots"}, "mbe.proportion: Input should be a valid number"),
        ({"propotion": 0.1}, "mbe.propotion: unknown key (known: subclusters, proportion"),
        ({"analysis": {"max_ordre": 3}}, "mbe.analysis.max_ordre: unknown key (known: parents"),
        ({"analysis": {"test_parents": "some"}}, "mbe.analysis.test_parents: Input should be"),
        ({"orders": "2-7"}, "mbe.orders: Value error, '2-7' is not an order range"),
        ({"orders": [0, 2]}, "mbe.orders: Value error, [0, 2] must list sizes >= 1"),
        ({"subcluster_weight": 0}, "mbe.subcluster_weight: Input should be greater than"),
        ({"subcluster_weight": 2.5}, "mbe.subcluster_weight: Input should be a valid integer"),
        ("yes", "mbe: Input should be a valid dictionary"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_key(section, message):
    with pytest.raises(MBEInputError) as error:
        parse_options(section, "o.yaml")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_the_documentation_table_lists_every_option_once():
    table = options_table()
    for name in MBEOptions.model_fields:
        if name != "analysis":
            assert table.count(f"| `{name}` |") == 1
    assert "| `analysis.max_order` | `int | None` | `None` |" in table
    assert "| `proportion` | `float` | `1.0` |" in table


def test_the_documentation_page_holds_the_current_table():
    from pathlib import Path

    page = Path(__file__).parents[2] / "docs" / "training.md"
    assert options_table() in page.read_text()


def test_the_eval_documentation_holds_the_current_table():
    from pathlib import Path

    from metatrain_mbe.interface.options import EvalOptions

    page = Path(__file__).parents[2] / "docs" / "analysis.md"
    assert options_table(EvalOptions) in page.read_text()


def test_the_study_documentation_holds_the_current_table():
    from pathlib import Path

    from metatrain_mbe.interface.study import StudyOptions

    page = Path(__file__).parents[2] / "docs" / "study.md"
    assert options_table(StudyOptions) in page.read_text()


def _study(**given):
    return {"architectures": {"pet": "pet.yaml"}, **given}


@pytest.mark.parametrize(
    "model, section, message",
    [
        (None, {"proportion": True}, "o.yaml: mbe.proportion: Input should be a valid number"),
        (None, {"proportion": "0.5"}, "o.yaml: mbe.proportion: Input should be a valid number"),
        (None, {"seed": True}, "o.yaml: mbe.seed: Input should be a valid integer"),
        (
            None,
            {"subcluster_weight": "2"},
            "mbe.subcluster_weight: Input should be a valid integer",
        ),
        (None, {"isolated_atom_copies": True}, "mbe.isolated_atom_copies: Input should be a valid"),
        (None, {"orders": [True, 3]}, "o.yaml: mbe.orders.0: Input should be a valid integer"),
        (None, {"cutoff": True}, "o.yaml: mbe.cutoff: Value error, True is not a cutoff in Å"),
        (None, {"e1": {"H": True}}, "o.yaml: mbe.e1: Value error, H=True is not an energy in eV"),
        (None, {"analysis": {"max_order": "3"}}, "mbe.analysis.max_order: Input should be a valid"),
        (None, {"analysis": {"parents": [True]}}, "mbe.analysis.parents.0: Input should be a"),
        ("eval", {"max_atoms": True}, "o.yaml: mbe.max_atoms: Input should be a valid integer"),
        ("eval", {"max_atoms": "12"}, "o.yaml: mbe.max_atoms: Input should be a valid integer"),
        ("eval", {"subcluster_batch_size": True}, "mbe.subcluster_batch_size: Input should be"),
        ("study", _study(proportions=["0.5"]), "o.yaml: proportions.0: Input should be a valid"),
        ("study", _study(proportions=[True]), "o.yaml: proportions.0: Input should be a valid"),
        ("study", _study(dataset_proportions=["1"]), "o.yaml: dataset_proportions.0: Input"),
        ("study", _study(seeds=[True]), "o.yaml: seeds.0: Input should be a valid integer"),
        ("study", _study(validation_set="0.1"), "o.yaml: validation_set: Input should be a valid"),
        ("study", _study(test_set=True), "o.yaml: test_set: Input should be a valid number"),
        ("study", _study(split_seed=True), "o.yaml: split_seed: Input should be a valid integer"),
        ("study", _study(cutoff=True), "o.yaml: cutoff: Value error, True is not a cutoff in Å"),
    ],
)
def test_bools_and_text_are_refused_by_number_options(model, section, message):
    from metatrain_mbe.interface.options import EvalOptions
    from metatrain_mbe.interface.study import StudyOptions

    models = {None: (MBEOptions, "mbe"), "eval": (EvalOptions, "mbe"), "study": (StudyOptions, "")}
    options_model, prefix = models[model]
    with pytest.raises(MBEInputError) as error:
        parse_options(section, "o.yaml", options_model, prefix)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_an_int_is_taken_for_a_float_but_no_float_for_an_int():
    from metatrain_mbe.interface.study import StudyOptions

    options = parse_options({"proportion": 1, "cutoff": 8, "analysis": {"max_order": 3}})
    assert options.proportion == 1.0 and isinstance(options.proportion, float)
    assert options.cutoff == "8.0" and options.analysis.max_order == 3
    study = parse_options(_study(proportions=[0, 1], test_set=0.2), "s.yaml", StudyOptions, "")
    assert study.proportions == [0.0, 1.0] and study.test_set == 0.2
    with pytest.raises(MBEInputError, match="mbe.subcluster_weight: Input should be a valid int"):
        parse_options({"subcluster_weight": 2.0}, "o.yaml")


@pytest.mark.parametrize(
    "text, overrides, message",
    [
        ("mbe:\n  orders: 2:7\n", [], "o.yaml: mbe.orders: 2:7 reads as a base-60 number"),
        ("mbe:\n  cutoff: 3:8\n", [], "o.yaml: mbe.cutoff: 3:8 reads as a base-60 number"),
        ("mbe: {}\n", ["mbe.orders=2:7"], "-r mbe.orders=2:7: mbe.orders: 2:7 reads as a base-60"),
    ],
)
def test_a_value_yaml_reads_as_base_60_is_refused(tmp_path, text, overrides, message):
    from metatrain_mbe.interface.options import load_options

    (tmp_path / "o.yaml").write_text(text)
    with pytest.raises(MBEInputError, match=message):
        load_options(str(tmp_path / "o.yaml"), overrides)
    (tmp_path / "o.yaml").write_text(text.replace("2:7", "'2:7'").replace("3:8", '"3:8"'))
    quoted = [o.replace("2:7", "'2:7'") for o in overrides]
    assert load_options(str(tmp_path / "o.yaml"), quoted)["mbe"] != {"orders": 127}
