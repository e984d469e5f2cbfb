"""A tiny convolutional network, for benchmarks where the forward pass must cost almost nothing.

Three strided 3x3 convolutions with ReLUs (strides 2, 4 and 8: three saliency
scales), global pooling and a linear layer: the regime of a GPU, where the
network is nearly free and everything around it is what the user waits for.
Used through geosal's model factory::

    geosal run SCENE OUT --model tiny.pt --model-factory workflows.tiny_network:build --gsd 0.406
"""

from __future__ import annotations

import torch
from torch import nn


def build(num_classes: int = 21, width: int = 16) -> nn.Module:
    """The tiny network: ``[B, 3, H, W] -> [B, num_classes]`` (H, W multiples of 8)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes),
    )


def save(path, seed: int = 0) -> None:
    """Save a seeded, randomly initialised tiny network's state dict (loadable with ``weights_only=True``)."""
    torch.manual_seed(seed)
    torch.save(build().state_dict(), path)
