"""``load_model``: one entry point for every source of weights.

Sources, by the ``name_or_path`` given (the same strings work for ``--model``
and the config's ``model.name``):

- ``None``, ``"default"`` or ``"ucmerced-resnet18"``: the model shipped with
  geosal (a ResNet-18 trained on UC Merced Land Use), loaded offline;
- ``"resnet50"``, ``"resnet50:IMAGENET1K_V2"``, ``"vgg16:DEFAULT"``, ...: a
  torchvision architecture with torchvision weights, downloaded and cached by
  ``torch.hub`` exactly as torchvision does (``$TORCH_HOME/hub/checkpoints``);
  a plain architecture name means its ``DEFAULT`` weights;
- ``"timm:convnext_tiny"``, ``"timm:convnext_tiny.fb_in1k"``: timm pretrained
  weights from timm's own cache;
- ``"ResNet50_Weights.SENTINEL2_ALL_MOCO"`` (or ``"torchgeo:..."``): TorchGeo
  weights, with the bands, normalisation and resolution they declare;
- ``"<family>:<architecture>:none"`` or ``"none"`` (with ``architecture=``):
  random initialisation, with a warning (``smp:Unet:none``, ``timm:convnext_tiny:none``);
- a path to a checkpoint file: a state dict or a common wrapper of one, read
  with ``torch.load(weights_only=True)``; a plain state dict needs
  ``architecture=`` (``resnet50``, ``timm:convnext_tiny``, ``smp:Unet``,
  ``torchgeo:resnet50``) or ``factory="package.module:function"``.

:func:`resolve_spec` runs on the client: it checks that the weights exist and
load into the network, and pins the file's SHA-256 in the spec. Workers then
build the model with :func:`load_from_spec`, from their own copy or from the
bytes the client read (:func:`weight_bytes`), refusing any other bytes.

Every failure raises :class:`ModelLoadError` with one line saying what to do.
"""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from geosal.models import timm_models, torchgeo_models
from geosal.models.checkpoints import GEOSAL_FORMAT, extract_state_dict, read_checkpoint
from geosal.models.errors import ModelLoadError
from geosal.models.families import (
    SHIPPED_MODELS,
    build_full,
    build_network_for,
    network_with_weights,
    shipped_checkpoint,
    weights_file,
)
from geosal.models.networks import classification_architectures, first_conv
from geosal.models.pinning import bytes_sha256, check_pin, file_sha256, read_pinned_bytes
from geosal.models.spec import FAMILIES, ModelSpec
from geosal.models.weights_source import NO_WEIGHTS, WeightsKind, WeightsSource

DEFAULT_MODEL = "ucmerced-resnet18"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar", ".safetensors")
FAMILY_PREFIXES = {"torchvision": "torchvision", "timm": "timm", "torchgeo": "torchgeo", "smp": "segmentation",
                   "segmentation": "segmentation"}
"""``--model`` / ``architecture`` prefixes and the family each names."""

__all__ = [
    "DEFAULT_MODEL", "SHIPPED_MODELS", "LoadedModel", "build_network_for", "load_from_spec", "load_model",
    "resolve_spec", "shipped_checkpoint", "weight_bytes",
]


@dataclass
class LoadedModel:
    """A network ready for inference and the description it was built from.

    Attributes:
        network: the ``torch.nn.Module``, in eval mode.
        spec: the :class:`ModelSpec` that rebuilds it (small and picklable).
    """

    network: nn.Module
    spec: ModelSpec
    _normalisation: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def classes(self) -> list[str]:
        """Class names, in output order (may be empty)."""
        return list(self.spec.classes)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """Turn pixels into the network's input.

        Args:
            images: ``[N, H, W, C]``: ``uint8`` for a spec with ``input_units="stretched"``;
                any integer or float dtype (the scene's own values) for ``"source"``.
                ``C`` must equal the model's ``input_bands``, or be 1 for a 3-band
                model whose spec says ``single_band="replicate"`` (the band is
                copied to R, G and B).

        Returns:
            ``float32`` tensor ``[N, input_bands, H, W]``: ``value * pixel_scale``,
            then ``(value - mean) / std`` per channel, on the network's device.

        Raises:
            ValueError: wrong dtype, rank or band count.
        """
        images = np.asarray(images)
        spec = self.spec
        if spec.input_units == "stretched" and images.dtype != np.uint8:
            raise ValueError(f"preprocess expects uint8 pixels, got {images.dtype}; scale the data to 0-255 first")
        if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
            raise ValueError(f"preprocess expects numeric pixels, got {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"preprocess expects [N, H, W, C], got shape {images.shape}")
        bands = images.shape[-1]
        if bands != spec.input_bands:
            if bands == 1 and spec.input_bands == 3 and spec.single_band == "replicate":
                images = np.repeat(images, 3, axis=-1)
            else:
                raise ValueError(
                    f"images have {bands} bands but the model takes {spec.input_bands}: select bands "
                    f"(for example bands: [1, 2, 3]) or load the model with input_bands={bands}"
                )
        device = next(self.network.parameters()).device
        pixels = torch.from_numpy(np.ascontiguousarray(images))  # transferred as they are: uint8 is 4x smaller
        if device.type == "cuda":
            pixels = pixels.pin_memory().to(device, non_blocking=True)
        else:
            pixels = pixels.to(device)
        gain, bias = self._normalisation_on(device)
        return torch.addcmul(bias, pixels.permute(0, 3, 1, 2).float(), gain)  # channels-last, as the pixels came

    def _normalisation_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``pixel_scale / std`` and ``-mean / std`` as ``[1, C, 1, 1]`` tensors on ``device``, made once."""
        if device not in self._normalisation:
            mean = torch.tensor(self.spec.mean, dtype=torch.float64).view(1, -1, 1, 1)
            std = torch.tensor(self.spec.std, dtype=torch.float64).view(1, -1, 1, 1)
            self._normalisation[device] = ((self.spec.pixel_scale / std).float().to(device), (-mean / std).float().to(device))
        return self._normalisation[device]


def resolve_spec(name_or_path: str | None = None, **overrides) -> ModelSpec:
    """The :class:`ModelSpec` for a model name or checkpoint, checked and pinned.

    Runs on the client, before any cluster: the network is built, the weights
    are found (downloaded once when that is how their library works), loaded
    into it, and their file's SHA-256 is recorded in ``spec.weights.sha256``.
    Checks are cached per spec, so an archive of scenes pays them once.

    Args:
        name_or_path: see the module docstring.
        overrides: :class:`ModelSpec` fields to replace (``architecture`` with an
            optional family prefix such as ``timm:``, ``num_classes``,
            ``input_bands``, ``band_names``, ``classes``, ``mean``, ``std``,
            ``gsd_m``, ``options``, ``decoder``...), plus ``factory``
            (``package.module:function``); ``None`` values are ignored.

    Raises:
        ModelLoadError: the source cannot be resolved, the weights are missing,
            corrupt or do not fit.
    """
    overrides = _normalise_overrides(overrides)
    name = DEFAULT_MODEL if name_or_path in (None, "", "default") else str(name_or_path)
    try:
        spec = _resolve_unpinned(name, overrides)
    except ValueError as error:
        if isinstance(error, ModelLoadError):
            raise
        raise ModelLoadError(str(error)) from None
    return _pinned_and_checked(spec)


def _normalise_overrides(overrides: dict) -> dict:
    overrides = {k: v for k, v in overrides.items() if v is not None}
    factory = overrides.pop("factory", None)
    if factory is not None:
        overrides["family"], overrides["architecture"] = "factory", str(factory)
    architecture = overrides.get("architecture")
    if architecture is not None and factory is None:
        prefix, colon, rest = str(architecture).partition(":")
        if colon and prefix in FAMILY_PREFIXES:
            overrides["family"], overrides["architecture"] = FAMILY_PREFIXES[prefix], rest
    unknown = set(overrides) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise ModelLoadError(f"unknown model option(s): {', '.join(sorted(unknown))}")
    if overrides.get("family", "torchvision") not in FAMILIES:
        raise ModelLoadError(f"unknown model family {overrides['family']!r}; one of: {', '.join(FAMILIES)}")
    return overrides


def _resolve_unpinned(name: str, overrides: dict) -> ModelSpec:
    if name in SHIPPED_MODELS:
        return _checkpoint_spec(shipped_checkpoint(name), WeightsSource(WeightsKind.SHIPPED, name), overrides)
    if name == "none":
        if "architecture" not in overrides:
            raise ModelLoadError("'none' (random weights) needs an architecture, for example resnet50:none")
        return _random_spec(overrides)
    prefix, colon, rest = name.partition(":")
    family = FAMILY_PREFIXES.get(prefix) if colon else None
    if family is None and "_Weights." in name and "/" not in name:
        family, rest = "torchgeo", name
    if family is not None and not Path(name).exists():
        target, _, weights = rest.rpartition(":") if rest.endswith(":none") else (rest, "", "")
        if weights == "none":
            return _random_spec({"family": family, **overrides, "architecture": overrides.get("architecture", target)})
        if family == "timm":
            return timm_models.resolve(rest, overrides)
        if family == "torchgeo":
            return torchgeo_models.resolve(rest, overrides)
        if family == "torchvision":
            name = rest
        else:
            raise ModelLoadError(f"{name}: segmentation models are random ({prefix}:ARCH:none) or a checkpoint "
                                 f"with --architecture {prefix}:ARCH")
    architecture, _, weights = name.partition(":")
    if architecture in classification_architectures() and overrides.get("family", "torchvision") == "torchvision":
        if weights.lower() == "none":
            return _random_spec({"architecture": architecture, **overrides})
        return _torchvision_spec(architecture, weights or "DEFAULT", overrides)
    path = Path(name)
    if path.exists() or path.suffix in CHECKPOINT_SUFFIXES or "/" in name:
        return _checkpoint_spec(path, WeightsSource(WeightsKind.CHECKPOINT, str(path.resolve())), overrides)
    raise ModelLoadError(
        f"unknown model {name!r}: give a torchvision architecture (resnet50, resnet50:IMAGENET1K_V2), timm:NAME, "
        f"TorchGeo weights (ResNet50_Weights.SENTINEL2_ALL_MOCO), a checkpoint file, '<architecture>:none' "
        f"or a shipped model ({', '.join(SHIPPED_MODELS)})"
    )


def _random_spec(overrides: dict) -> ModelSpec:
    if overrides.get("family") == "segmentation":
        overrides = {"num_classes": 1, **overrides}
    spec = ModelSpec(weights=NO_WEIGHTS, **overrides)
    if spec.family != "factory" or "input_bands" in overrides:
        return spec
    return spec.with_overrides(**_shapes_of(build_full(spec)))


def _torchvision_spec(architecture: str, weights: str, overrides: dict) -> ModelSpec:
    try:
        enum = torchvision.models.get_model_weights(architecture)
        member = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except KeyError:
        choices = ", ".join(w.name for w in torchvision.models.get_model_weights(architecture))
        raise ModelLoadError(f"{architecture} has no torchvision weights {weights!r}; choose one of: {choices}, none") from None
    transform = member.transforms()
    base = ModelSpec(
        architecture=architecture,
        weights=WeightsSource(WeightsKind.TORCHVISION, member.name),
        num_classes=len(member.meta.get("categories", [])) or 1000,
        classes=tuple(member.meta.get("categories", ())),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        input_size=int(transform.crop_size[0]),
    )
    return base.with_overrides(**overrides)


def _checkpoint_spec(path: Path, weights: WeightsSource, overrides: dict) -> ModelSpec:
    content = read_checkpoint(path)
    if content.get("format") == GEOSAL_FORMAT:
        spec = ModelSpec.from_dict(content["spec"])
        return spec.with_overrides(weights=weights, **overrides)
    state = extract_state_dict(content)
    if "architecture" not in overrides:
        raise ModelLoadError(
            f"{path}: a plain state dict does not say its architecture; pass architecture=... (--architecture, "
            "for example resnet50 or timm:convnext_tiny) or factory=package.module:function (--model-factory)"
        )
    probe = ModelSpec(**{k: v for k, v in overrides.items() if k not in ("mean", "std", "band_names")})
    inferred = _shapes_of(build_full(probe)) if probe.family == "factory" else _infer_shapes(probe, state)
    values = {**inferred, **overrides}
    bands = values.get("input_bands", 3)
    if bands != 3 and ("mean" not in values or "std" not in values):
        raise ModelLoadError(
            f"{path}: the network takes {bands} bands: give its per-band normalisation "
            f"(model.mean and model.std, {bands} values each, after pixel_scale)"
        )
    return ModelSpec(weights=weights, **values)


def _shapes_of(network: nn.Module) -> dict:
    """``input_bands`` and ``num_classes`` of a built network (its first conv and last linear layer)."""
    _, conv = first_conv(network)
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    return {"input_bands": conv.in_channels, "num_classes": linears[-1].out_features if linears else 0}


def _infer_shapes(spec: ModelSpec, state: dict[str, torch.Tensor]) -> dict:
    """``num_classes`` and ``input_bands`` read off the checkpoint's first conv and its head
    (the last linear layer, or a segmentation network's last convolution)."""
    probe = build_full(spec)
    conv_name, _ = first_conv(probe)
    head_types = (nn.Conv2d,) if spec.family == "segmentation" or spec.architecture == "unet" else (nn.Linear,)
    heads = [n for n, m in probe.named_modules() if isinstance(m, head_types)]
    inferred = {}
    if heads and f"{heads[-1]}.weight" in state:
        inferred["num_classes"] = int(state[f"{heads[-1]}.weight"].shape[0])
    if f"{conv_name}.weight" in state:
        inferred["input_bands"] = int(state[f"{conv_name}.weight"].shape[1])
    return inferred


def _pinned_and_checked(spec: ModelSpec) -> ModelSpec:
    path = weights_file(spec)
    if path is None:
        _check_builds(spec)
        return spec
    sha256 = file_sha256(path)
    check_pin(spec.weights, sha256, str(path))
    pinned = replace(spec, weights=spec.weights.pinned(sha256))
    _check_loads(pinned)
    return pinned


@functools.lru_cache(maxsize=16)
def _check_builds(spec: ModelSpec) -> None:
    build_network_for(spec)


_verified: set[ModelSpec] = set()
_handed_over: dict[ModelSpec, nn.Module] = {}
"""The network :func:`_check_loads` built last, given to the next :func:`load_from_spec` of the same spec in
this process instead of reading and loading the file a second time (planning and running one scene)."""
_verified_lock = threading.Lock()


def _check_loads(spec: ModelSpec) -> None:
    with _verified_lock:
        if spec in _verified:
            return
    network = _network_from_file(spec, weights_file(spec), None)
    with _verified_lock:
        _verified.add(spec)
        _handed_over.clear()
        _handed_over[spec] = network


def weight_bytes(spec: ModelSpec) -> bytes | None:
    """The bytes of a resolved spec's weight file, checked against its pin, to send to
    workers that do not share this machine's files (``None`` for random weights).

    Raises:
        ModelLoadError: the file is missing or no longer matches the pin.
    """
    path = weights_file(spec)
    return None if path is None else read_pinned_bytes(path, spec.weights)


def load_from_spec(spec: ModelSpec, device: str | torch.device = "cpu", weights: bytes | None = None) -> LoadedModel:
    """Build the network a :class:`ModelSpec` describes and load its weights.

    This is what each Dask worker calls once.

    Args:
        spec: a spec, normally pinned by :func:`resolve_spec`.
        device: where to put the network.
        weights: the weight file's bytes as the client read them (:func:`weight_bytes`),
            for a worker that does not share the client's files; ``None`` reads the
            spec's own file (checked against the pin when there is one).

    Raises:
        ModelLoadError: the weights cannot be found, differ from the pin, or do not fit.
    """
    if spec.weights.is_random:
        if weights is not None:
            raise ModelLoadError("weight bytes were given for a spec with random weights")
        warnings.warn(
            f"{spec.architecture} has random weights: its saliency maps describe an untrained network",
            stacklevel=2,
        )
        return LoadedModel(build_network_for(spec).to(device), spec)
    if weights is not None:
        if not spec.weights.sha256:
            raise ModelLoadError("weight bytes can only be checked against a pinned spec: resolve it with resolve_spec first")
        check_pin(spec.weights, bytes_sha256(weights), "the bytes sent by the client")
    elif spec.weights.sha256:  # the file must still be the one resolved (its hash is cached by size and mtime)
        path = weights_file(spec)
        if path is None or not path.is_file():
            raise ModelLoadError(f"checkpoint not found: {path}")
        check_pin(spec.weights, file_sha256(path), str(path))
    with _verified_lock:
        network = _handed_over.pop(spec, None)
    if network is None:
        network = _network_from_file(spec, None, weights) if weights is not None else \
            _network_from_file(spec, weights_file(spec), None)
    return LoadedModel(network.eval().to(device), spec)


def _network_from_file(spec: ModelSpec, path: Path | None, content: bytes | None) -> nn.Module:
    if content is None:
        content = read_pinned_bytes(path, spec.weights)
    label = str(path) if path is not None else f"weights {spec.weights}"
    state = extract_state_dict(read_checkpoint(label, content))
    return network_with_weights(spec, state, label)


def load_model(name_or_path: str | None = None, device: str | torch.device = "cpu", **overrides) -> LoadedModel:
    """Load a model from any supported source (see the module docstring).

    Args:
        name_or_path: model name, ``architecture[:weights]`` or checkpoint path;
            ``None`` loads the shipped default.
        device: where to put the network.
        overrides: see :func:`resolve_spec`; for example ``architecture="resnet50"``
            for a plain state dict, ``input_bands=4`` for an RGBN model,
            ``gsd_m=0.15`` or ``mean=...``/``std=...``.

    Returns:
        A :class:`LoadedModel` in eval mode.

    Raises:
        ModelLoadError: one clear line per failure.
    """
    return load_from_spec(resolve_spec(name_or_path, **overrides), device)
