"""Model factories for the ``--model-factory`` tests: ordinary user code that geosal has never heard of."""

from __future__ import annotations

from torch import nn


def tiny_cnn(bands: int = 4, classes: int = 3, width: int = 8) -> nn.Module:
    """A small CNN with three scales (strides 2, 4, 8), ReLU after each stage."""
    def stage(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

    return nn.Sequential(
        stage(bands, width), stage(width, 2 * width), stage(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, classes),
    )


def not_a_network(**_) -> dict:
    """Returns something that is not an ``nn.Module``."""
    return {"layers": 3}
