"""TorchGeo weights by their enum name, with the bands, normalisation and resolution they declare.

``ResNet50_Weights.SENTINEL2_ALL_MOCO`` (optionally ``torchgeo:``-prefixed)
becomes a spec whose ``band_names``, ``input_bands``, ``mean`` / ``std`` (from
the weights' ``Normalize`` transform, in the source's own units: TorchGeo's
models take reflectance x 10000 or raw digital numbers, not a stretch) and
``gsd_m`` (when the weights state a ``resolution``) come from the weights, so
the user does not restate them. The file is looked up in torch.hub's cache
(``$TORCH_HOME/hub/checkpoints``), where TorchGeo itself caches it; one plain
download is tried when it is not there, and otherwise the error names the file
and the folder to put it in.
"""

from __future__ import annotations

import difflib
import urllib.error
from pathlib import Path

import torch
from torch import nn

from geosal.models.errors import ModelLoadError
from geosal.models.extras import require
from geosal.models.spec import ModelSpec
from geosal.models.weights_source import WeightsKind, WeightsSource

TIMM_BACKBONES = ("resnet18", "resnet50", "resnet152")
"""TorchGeo builders that are timm models (``in_chans``, ``num_classes``)."""


def _models():
    return require("torchgeo.models")


def weights_member(name: str):
    """The TorchGeo weights enum member called ``name`` (``ResNet50_Weights.SENTINEL2_ALL_MOCO``).

    Raises:
        ModelLoadError: unknown name, with close names.
    """
    models = _models()
    enum_name, _, member = name.partition(".")
    enum = getattr(models, enum_name, None)
    if enum is None or not enum_name.endswith("_Weights"):
        close = difflib.get_close_matches(enum_name, [n for n in dir(models) if n.endswith("_Weights")], n=3)
        raise ModelLoadError(f"unknown TorchGeo weights {name!r}" + (f" (close: {', '.join(close)})" if close else ""))
    try:
        return enum[member]
    except KeyError:
        raise ModelLoadError(f"{enum_name} has no weights {member!r}; choose one of: {', '.join(w.name for w in enum)}") from None


def builder_name(member) -> str:
    """The TorchGeo model builder (``resnet50``, ``unet``, ...) that the weights belong to."""
    models = _models()
    for name in models.list_models():
        try:
            if models.get_model_weights(name) is type(member):
                return name
        except KeyError:  # a builder without weights (TorchGeo lists some)
            continue
    raise ModelLoadError(f"TorchGeo has no model builder for {type(member).__name__}")


def _normalisation(member) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``mean`` and ``std`` of the weights' ``Normalize`` transform (0 and 1 when there is none)."""
    transforms = member.transforms
    modules = transforms.modules() if isinstance(transforms, nn.Module) else [transforms]
    for module in modules:
        mean, std = getattr(module, "mean", None), getattr(module, "std", None)
        if mean is not None and std is not None:
            return tuple(float(v) for v in torch.as_tensor(mean).flatten()), tuple(float(v) for v in torch.as_tensor(std).flatten())
    return (0.0,), (1.0,)


def resolve(name: str, overrides: dict) -> ModelSpec:
    """The spec of TorchGeo weights ``name`` (``Enum_Weights.MEMBER``), not pinned yet."""
    member = weights_member(name)
    meta = dict(member.meta)
    bands = tuple(str(b) for b in meta.get("bands") or ())
    in_chans = int(meta.get("in_chans") or len(bands) or 3)
    mean, std = _normalisation(member)
    builder = builder_name(member)
    classes = tuple(str(c) for c in meta.get("classes") or ())
    num_classes = int(meta.get("num_classes") or len(classes) or 0)
    options: dict = {}
    if builder == "unet":
        options = {"encoder_name": meta["encoder"]}
    shape = meta.get("input_shape")
    base = ModelSpec(
        architecture=builder,
        family="torchgeo",
        weights=WeightsSource(WeightsKind.TORCHGEO, f"{type(member).__name__}.{member.name}"),
        num_classes=num_classes,
        classes=classes,
        input_bands=in_chans,
        band_names=bands if len(bands) == in_chans else (),
        input_units="source",
        pixel_scale=1.0,
        mean=mean,
        std=std,
        gsd_m=float(meta["resolution"]) if meta.get("resolution") else None,
        input_size=int(shape[-1]) if shape else 224,
        options=options,
    )
    return base.with_overrides(**overrides)


def build(spec: ModelSpec) -> nn.Module:
    """The randomly initialised network of a TorchGeo builder, shaped by the spec.

    timm backbones get ``in_chans`` / ``num_classes`` (0: no classifier, as
    TorchGeo's self-supervised weights have none); the U-Net gets
    ``in_channels`` / ``classes``; other builders get the spec's options only.
    """
    models = _models()
    if spec.architecture not in models.list_models():
        raise ModelLoadError(f"unknown TorchGeo model {spec.architecture!r}; one of: {', '.join(models.list_models())}")
    options = spec.builder_options
    if spec.architecture in TIMM_BACKBONES:
        options = {"in_chans": spec.input_bands, "num_classes": spec.num_classes, **options}
    elif spec.architecture == "unet":
        options = {"in_channels": spec.input_bands, "classes": max(spec.num_classes, 1), **options}
    try:
        return models.get_model(spec.architecture, weights=None, **options)
    except (TypeError, ValueError, KeyError) as error:
        raise ModelLoadError(f"TorchGeo model {spec.architecture}: {str(error).splitlines()[0]}") from None


def weights_file(spec: ModelSpec) -> Path:
    """The cached file of the spec's TorchGeo weights in ``$TORCH_HOME/hub/checkpoints`` (one download tried).

    Raises:
        ModelLoadError: not cached and not downloadable: names the file to fetch and the folder.
    """
    member = weights_member(spec.weights.name)
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    filename = member.url.rsplit("/", 1)[-1]
    target = folder / filename
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(member.url, str(target), progress=False)
        return target
    except (urllib.error.URLError, OSError) as error:
        raise ModelLoadError(
            f"TorchGeo weights {spec.weights.name} are not in the local cache and cannot be downloaded "
            f"({getattr(error, 'reason', error)}): fetch {member.url} and put it in {folder} as {filename}"
        ) from None


def optional_keys(spec: ModelSpec) -> tuple[str, ...]:
    """Checkpoint keys TorchGeo itself lets go missing or unused: the classifier of a
    timm backbone (``fc.``) and the head of a U-Net loaded for other classes."""
    if spec.architecture in TIMM_BACKBONES:
        return ("fc.",)
    if spec.architecture == "unet":
        return ("segmentation_head.",)
    return ()
