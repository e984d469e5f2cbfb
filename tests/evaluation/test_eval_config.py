"""The evaluation settings: one validation (pydantic, errors naming the field) and a command line generated from the fields."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.cli import build_parser
from geosal.cli import main as geosal_main
from geosal.cli.evaluate import SETTINGS, command_line, config_from_args
from geosal.errors import GeosalError
from geosal.evaluation.catalog import KAR_ROAR_DEFAULT, MAIN_METHODS, METHOD_NAMES, TABLE1_STATISTICS, method_names
from geosal.evaluation.config import PROTOCOLS, EvaluationConfig, EvaluationConfigError
from geosal.evaluation.options import PERCENTAGES


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0}, "epochs: Input should be greater than or equal to 1 (got 0)"),
    ({"percentages": (0.1, 1.5)}, "percentages.1: 1.5 is not a fraction strictly between 0 and 1"),
    ({"layer_kar": 0.0}, "layer_kar: 0 is not a fraction"),
    ({"methods": ("smoe_prior", "nonsense")}, "methods: unknown method(s) nonsense"),
    ({"eval_methods": ("gradcam", "sobel")}, "eval_methods: unknown method(s) sobel"),
    ({"layer_statistics": ("smoe", "median")}, "layer_statistics: unknown statistic(s) ['median']"),
    ({"protocols": ("road", "roar")}, "protocols.1: Input should be 'kar-roar', 'road', 'deletion' or 'layers' (got 'roar')"),
    ({"saliency_size": 8}, "saliency_size: Input should be greater than or equal to 16 (got 8)"),
    ({"deletion_substrate": "noise"}, "deletion_substrate: Input should be 'mean' or 'blur' (got 'noise')"),
    ({"epoch": 3}, "unknown evaluation setting 'epoch'"),
])
def test_invalid_settings_raise_one_line_naming_the_field(values, message):
    with pytest.raises(EvaluationConfigError) as raised:
        EvaluationConfig(**values)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value) and isinstance(raised.value, GeosalError)


def test_all_protocols_expand_in_order_without_duplicates():
    assert EvaluationConfig(protocols=["road", "all"]).protocols == ("road", "kar-roar", "deletion", "layers")
    assert EvaluationConfig(protocols=["all"]).protocols == PROTOCOLS


def test_method_names_expand_all_and_default():
    assert method_names("default,random,smoe_L2") == [*KAR_ROAR_DEFAULT, "smoe_L2"]
    assert method_names(["all"]) == list(MAIN_METHODS)
    # + single scales, random_L1..5 and the learned weighting
    assert len(METHOD_NAMES) == len(MAIN_METHODS) + 5 * (len(TABLE1_STATISTICS) - 1) + 5 + 1


def test_every_field_is_an_option_of_the_command_line():
    assert [s.name for s in SETTINGS] == list(EvaluationConfig.model_fields)
    flags = [s.flag for s in SETTINGS]
    assert len(set(flags)) == len(flags) and "--protocol" in flags and "--no-bf16" in flags and "--crop" in flags


def test_a_bad_value_on_the_command_line_is_one_line_and_status_2(capsys):
    assert geosal_main(["evaluate", "--epochs", "0", "--results", "unused"]) == 2
    error = capsys.readouterr().err
    assert error == "geosal: error: epochs: Input should be greater than or equal to 1 (got 0)\n"


@pytest.mark.parametrize("fraction, word", [(0.1, "10"), (0.025, "2.5"), (0.01, "0.01"), (0.005, "0.005"), (0.0101, "1.01")])
def test_percentages_are_written_so_that_they_read_back(fraction, word):
    assert PERCENTAGES.words((fraction,)) == [word]
    assert PERCENTAGES.parse(word) == (fraction,)


NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.:", min_size=1, max_size=12)
FRACTION = st.integers(1, 999_999).map(lambda k: round(k / 1_000_000, 6))
MAYBE_SIZE = st.none() | st.integers(16, 512)
OVERRIDES = st.fixed_dictionaries({}, optional={
    "data": st.sampled_from([Path("/tmp/ucm"), Path("data dir/with 'quotes'"), Path("../elsewhere")]),
    "results": st.builds(lambda name: Path("/tmp") / name, NAME),
    "model": NAME,
    "protocols": st.lists(st.sampled_from([*PROTOCOLS, "all"]), min_size=1, max_size=4),
    "methods": st.lists(st.sampled_from([*METHOD_NAMES, "all", "default"]), min_size=1, max_size=4).map(tuple),
    "percentages": st.lists(FRACTION, min_size=1, max_size=5).map(tuple),
    "image_size": st.integers(16, 256),
    "saliency_size": MAYBE_SIZE,
    "eval_size": MAYBE_SIZE,
    "crop": st.none() | st.integers(1, 64),
    "lr": st.floats(1e-6, 10, allow_nan=False),
    "mix_probability": st.floats(0, 1),
    "train_per_class": st.none() | st.integers(1, 100),
    "share_random": st.booleans(),
    "reference": st.booleans(),
    "layer_statistics": st.lists(st.sampled_from(list(TABLE1_STATISTICS)), min_size=1, max_size=3).map(tuple),
    "layer_kar": FRACTION,
    "deletion_substrate": st.sampled_from(["mean", "blur"]),
    "seed": st.integers(-5, 10**9),
    "bf16": st.booleans(),
    "threads": st.none() | st.integers(1, 64),
})


@settings(max_examples=200, deadline=None)
@given(OVERRIDES)
def test_the_reproducing_command_gives_the_config_back(overrides):
    config = EvaluationConfig(**overrides)
    words = shlex.split(command_line(config))
    assert words[:2] == ["geosal", "evaluate"]
    assert config_from_args(build_parser().parse_args(words[1:])) == config
