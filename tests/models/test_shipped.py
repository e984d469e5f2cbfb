"""The shipped UC Merced model: loads offline, has the accuracy its card states, exposes its scales."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geosal.data import load_labelled_folder, split_every_nth
from geosal.models import load_model
from geosal.models.loader import shipped_checkpoint
from geosal.models.training import predict
from geosal.saliency import find_scale_layers
from tests.paths import UCMERCED


@pytest.fixture(scope="module")
def shipped():
    return load_model()  # no network access: the checkpoint is package data


def test_loads_offline_by_default_and_by_name(shipped):
    again = load_model("ucmerced-resnet18")
    assert shipped.spec == again.spec
    assert str(shipped.spec.weights) == "shipped:ucmerced-resnet18"
    assert len(shipped.classes) == 21 and shipped.classes[0] == "agricultural"
    assert shipped.spec.gsd_m == pytest.approx(0.4064) and shipped.spec.input_size == 192
    assert not shipped.network.training


def test_checkpoint_is_compact():
    assert shipped_checkpoint("ucmerced-resnet18").stat().st_size < 25e6


def test_scale_ends_of_the_shipped_model(shipped):
    assert find_scale_layers(shipped.network, (1, 3, 192, 192)) == ["relu", "layer1", "layer2", "layer3", "layer4"]


def test_validation_accuracy_matches_the_model_card(shipped):
    card = json.loads(shipped_checkpoint("ucmerced-resnet18").with_suffix(".json").read_text())
    data = load_labelled_folder(UCMERCED, size=shipped.spec.input_size)
    _, val = split_every_nth(data)
    predicted = predict(shipped.network, data.images[val], shipped.spec.mean, shipped.spec.std)
    accuracy = float((predicted == data.labels[val]).mean())
    assert accuracy == pytest.approx(card["validation_accuracy"], abs=0.006)  # two images of 336
    assert accuracy >= 0.85
    matrix = np.array(card["confusion_matrix"])
    assert matrix.sum() == len(val) and np.trace(matrix) / matrix.sum() == pytest.approx(card["validation_accuracy"])
