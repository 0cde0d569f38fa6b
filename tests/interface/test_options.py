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
