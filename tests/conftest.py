"""Shared fixtures: paths to the real data beside the project, small seeded models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from tests import paths


@pytest.fixture(scope="session")
def resnet18() -> torch.nn.Module:
    """A seeded, randomly initialised ResNet-18 with 10 classes, in eval mode."""
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture(scope="session")
def aerial_batch() -> torch.Tensor:
    """Eight real UC Merced patches as a normalised ``[8, 3, 224, 224]`` float tensor."""
    files = sorted(paths.UCMERCED.glob("*/*00.jpg"))[:8]
    images = [np.array(Image.open(f).convert("RGB").resize((224, 224))) for f in files]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return (x - 0.45) / 0.25


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    """The folder of real test GeoTIFFs beside the project (read-only: never write there)."""
    return paths.SCENES
