"""Fixtures of the evaluation tests: real UC Merced images, a small seeded model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from geosal.evaluation.data import load_splits
from geosal.models import ModelSpec, save_checkpoint
from tests.paths import UCMERCED

MEAN, STD = (0.48, 0.49, 0.45), (0.22, 0.21, 0.20)


@pytest.fixture(scope="session")
def splits():
    """The first 2 training and 1 validation images of each class (not decoded)."""
    return load_splits(UCMERCED, train_per_class=2, val_per_class=1)


@pytest.fixture(scope="session")
def model21() -> torch.nn.Module:
    """A seeded random ResNet-18 with UC Merced's 21 outputs, eval mode."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=21).eval()


@pytest.fixture(scope="session")
def real_batch(splits) -> tuple[torch.Tensor, list[int]]:
    """Four real validation images (four classes) at 64 px, normalised, with their ids."""
    _, val = splits
    images = val.decode(64)[[0, 5, 10, 15]]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, val.ids[[0, 5, 10, 15]].tolist()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, model21, splits) -> str:
    """A geosal checkpoint of :func:`model21` whose spec says 32 px and UC Merced's classes."""
    train, _ = splits
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    spec = ModelSpec(architecture="resnet18", num_classes=21, classes=tuple(train.classes), mean=MEAN, std=STD, input_size=32)
    save_checkpoint(path, model21, spec.to_dict())
    return str(path)


def assert_close_to(value: float, expected: float, places: float = 0.005) -> None:
    assert abs(value - expected) <= places, f"{value} != {expected} (+- {places})"


np.set_printoptions(precision=4)
