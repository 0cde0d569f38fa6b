from pathlib import Path

import pytest
import yaml
from metatrain.utils.architectures import find_all_architectures, get_default_hypers

from metatrain_mbe.compute.architectures import ARCHITECTURES, architecture, family

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("declared", ARCHITECTURES.values(), ids=list(ARCHITECTURES))
def test_a_declaration_names_an_installed_architecture_and_its_options_file(declared):
    assert declared.name in find_all_architectures()
    options = yaml.safe_load((ROOT / declared.options).read_text())
    assert options["architecture"]["name"] == declared.name


@pytest.mark.parametrize(
    "declared",
    [a for a in ARCHITECTURES.values() if not a.calibrated],
    ids=[a.name for a in ARCHITECTURES.values() if not a.calibrated],
)
def test_the_one_body_setting_is_a_model_hyper_whose_default_keeps_the_term(declared):
    keys, value = declared.one_body_setting
    hypers = get_default_hypers(declared.name)["model"]
    for key in keys:
        hypers = hypers[key]  # a KeyError: the setting names no hyper of metatrain's
    assert hypers != value  # metatrain's default keeps the one-body term: fix_e1 must set it


def test_families_of_declared_and_undeclared_architectures():
    assert family("experimental.mace") == "mace"
    assert family("my_arch") == "my_arch"
    assert architecture("my_arch") is None and architecture(None) is None
    assert [a.name for a in ARCHITECTURES.values() if a.calibrated] == ["pet"]
