"""Build torchvision classification networks, including for other than 3 input bands."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from geosal.models.errors import ModelLoadError


def _resnet10(num_classes: int) -> nn.Module:
    """ResNet-10: torchvision's ResNet with one basic block per stage (half ResNet-18's depth and compute)."""
    from torchvision.models.resnet import BasicBlock, ResNet

    return ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)


SMALL_ARCHITECTURES = {"resnet10": _resnet10}
"""Architectures geosal adds to torchvision's: small networks for the retraining protocols of ``geosal evaluate``."""


def classification_architectures() -> list[str]:
    """Names of torchvision's image classification builders (``resnet50``, ``vgg16``, ...) and of
    :data:`SMALL_ARCHITECTURES`."""
    return sorted([*torchvision.models.list_models(module=torchvision.models), *SMALL_ARCHITECTURES])


def build_network(architecture: str, num_classes: int, input_bands: int = 3) -> nn.Module:
    """A randomly initialised torchvision classifier.

    Args:
        architecture: a name from :func:`classification_architectures`.
        num_classes: size of the final layer.
        input_bands: channels of the input; when not 3 the first convolution is
            replaced by one with ``input_bands`` input channels (see :func:`adapt_first_conv`).

    Raises:
        ModelLoadError: unknown architecture.
    """
    if architecture not in classification_architectures():
        raise ModelLoadError(
            f"unknown architecture {architecture!r}; use a torchvision classification model such as resnet50, vgg16, densenet121"
        )
    if architecture in SMALL_ARCHITECTURES:
        network = SMALL_ARCHITECTURES[architecture](num_classes)
    else:
        network = torchvision.models.get_model(architecture, weights=None, num_classes=num_classes)
    if input_bands != 3:
        adapt_first_conv(network, input_bands)
    return network


def first_conv(network: nn.Module) -> tuple[str, nn.Conv2d]:
    """Name and module of the first ``Conv2d`` (in registration order)."""
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ModelLoadError("the network has no Conv2d layer to take image bands")


def adapt_first_conv(network: nn.Module, input_bands: int) -> None:
    """Replace the first convolution with one taking ``input_bands`` channels, in place.

    Existing weights ``[out, c, k, k]`` are carried over: the first
    ``min(c, input_bands)`` channels are copied and any extra channel gets the
    mean of the original ones; everything is then scaled by ``c / input_bands``
    so the activation magnitude is unchanged for inputs of similar statistics
    (the scheme TorchGeo and timm use for multispectral inputs).
    """
    name, old = first_conv(network)
    if old.in_channels == input_bands:
        return
    new = nn.Conv2d(
        input_bands, old.out_channels, old.kernel_size, old.stride, old.padding,
        old.dilation, old.groups, old.bias is not None, old.padding_mode,
    )
    with torch.no_grad():
        weight = old.weight
        mean = weight.mean(dim=1, keepdim=True)
        pieces = [weight[:, : min(old.in_channels, input_bands)]]
        if input_bands > old.in_channels:
            pieces.append(mean.expand(-1, input_bands - old.in_channels, -1, -1))
        new.weight.copy_(torch.cat(pieces, dim=1) * (old.in_channels / input_bands))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    parent_name, _, child = name.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, child, new)
