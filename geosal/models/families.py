"""Build any family's network for a spec, find its weight file, and put the weights in.

One dispatch point for the model families (torchvision, timm, TorchGeo,
segmentation, factory) and the kinds of weights (:class:`WeightsKind`):

- :func:`build_full` builds the whole network with random weights;
- :func:`weights_file` finds the file the weights live in on this machine;
- :func:`network_with_weights` builds the network and loads a state dict into it;
- :func:`build_network_for` is the randomly initialised network as it runs
  (the decoder choice applied), for probing scale ends.
"""

from __future__ import annotations

import urllib.error
from importlib import resources
from pathlib import Path

import torch
import torchvision
from torch import nn

from geosal.models import factory_models, segmentation_models, timm_models, torchgeo_models
from geosal.models.checkpoints import load_weights
from geosal.models.errors import ModelLoadError
from geosal.models.networks import adapt_first_conv, build_network
from geosal.models.spec import ModelSpec
from geosal.models.weights_source import WeightsKind

SHIPPED_MODELS = {"ucmerced-resnet18": "ucmerced_resnet18.pt"}

_BUILDERS = {
    "timm": timm_models.build,
    "torchgeo": torchgeo_models.build,
    "segmentation": segmentation_models.build,
    "factory": factory_models.build,
}


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped inside the package."""
    if name not in SHIPPED_MODELS:
        raise ModelLoadError(f"no shipped model {name!r}; shipped: {', '.join(SHIPPED_MODELS)}")
    return Path(str(resources.files("geosal.models") / "weights" / SHIPPED_MODELS[name]))


def build_full(spec: ModelSpec) -> nn.Module:
    """The spec's whole network, randomly initialised (decoder included).

    Raises:
        ModelLoadError: unknown architecture, bad options, a missing optional library.
    """
    if spec.family == "torchvision":
        if spec.options:
            raise ModelLoadError("torchvision models take no model options")
        return build_network(spec.architecture, spec.num_classes, spec.input_bands)
    return _BUILDERS[spec.family](spec)


def build_network_for(spec: ModelSpec) -> nn.Module:
    """The randomly initialised network for ``spec`` as it runs (the spec's decoder
    choice applied), in eval mode on the CPU: what scale discovery probes.

    Raises:
        ModelLoadError: the network cannot be built.
    """
    return segmentation_models.select_part(build_full(spec), spec).eval()


def weights_file(spec: ModelSpec) -> Path | None:
    """The file holding the spec's weights on this machine (``None`` for random weights).

    Library weights (torchvision, timm, TorchGeo) are looked up in their cache
    and downloaded once when absent and reachable.

    Raises:
        ModelLoadError: not available, saying what to fetch and where to put it.
    """
    kind = spec.weights.kind
    if kind is WeightsKind.NONE:
        return None
    if kind is WeightsKind.SHIPPED:
        return shipped_checkpoint(spec.weights.name)
    if kind is WeightsKind.CHECKPOINT:
        path = Path(spec.weights.name)
        if not path.is_file():
            raise ModelLoadError(f"checkpoint not found: {path}")
        return path
    if kind is WeightsKind.TORCHVISION:
        return _torchvision_file(spec)
    if kind is WeightsKind.TIMM:
        return timm_models.weights_file(spec)
    return torchgeo_models.weights_file(spec)


def _torchvision_file(spec: ModelSpec) -> Path:
    try:
        member = torchvision.models.get_model_weights(spec.architecture)[spec.weights.name]
    except (KeyError, ValueError):
        raise ModelLoadError(f"{spec.architecture} has no torchvision weights {spec.weights.name!r}") from None
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    target = folder / member.url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    try:  # torch.hub's own download, without the "Downloading: ..." line load_state_dict_from_url always prints
        folder.mkdir(parents=True, exist_ok=True)
        prefix = torch.hub.HASH_REGEX.search(target.name)
        torch.hub.download_url_to_file(member.url, str(target), prefix.group(1) if prefix else None, progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as error:  # RuntimeError: the download does not match its hash
        raise ModelLoadError(
            f"cannot download torchvision weights {spec.architecture}:{spec.weights.name} "
            f"({getattr(error, 'reason', error)}); offline, fetch {member.url} elsewhere and put it in {folder}, "
            f"or pass the file as the model path with architecture={spec.architecture}"
        ) from None
    return target


def network_with_weights(spec: ModelSpec, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Build the spec's network and load ``state`` (a state dict of the spec's weights) into it.

    Library weights are adapted the way their library does it (torchvision and
    timm: another number of input bands or classes); checkpoints must fit exactly.
    The spec's decoder choice is applied last.

    Raises:
        ModelLoadError: the state dict does not fit, listing the keys.
    """
    kind = spec.weights.kind
    if kind is WeightsKind.TORCHVISION:
        network = build_network(spec.architecture, spec.num_classes)
        load_weights(network, state, source)
        if spec.input_bands != 3:
            adapt_first_conv(network, spec.input_bands)
    elif kind is WeightsKind.TIMM or spec.family == "timm" and spec.builder_options.get("features_only"):
        network = timm_models.load_pretrained(spec, state, source)
    else:
        network = build_full(spec)
        optional = torchgeo_models.optional_keys(spec) if kind is WeightsKind.TORCHGEO else ()
        load_weights(network, state, source, optional)
    return segmentation_models.select_part(network, spec)
