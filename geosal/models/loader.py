"""``load_model``: one entry point for every source of weights.

Sources, by the ``name_or_path`` given:

- ``None``, ``"default"`` or ``"ucmerced-resnet18"``: the model shipped with
  geosal (a ResNet-18 trained on UC Merced Land Use), loaded offline;
- ``"resnet50"``, ``"resnet50:IMAGENET1K_V2"``, ``"vgg16:DEFAULT"``, ...: a
  torchvision architecture with torchvision weights, downloaded and cached by
  ``torch.hub`` exactly as torchvision does (``$TORCH_HOME/hub/checkpoints``);
  a plain architecture name means its ``DEFAULT`` weights;
- ``"resnet50:none"`` or ``"none"`` (with ``architecture=``): random
  initialisation, with a warning;
- a path to a checkpoint file: a state dict or a common wrapper of one, read
  with ``torch.load(weights_only=True)``.

Every failure raises :class:`ModelLoadError` with one line saying what to do.
"""

from __future__ import annotations

import urllib.error
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from geosal.models.checkpoints import GEOSAL_FORMAT, extract_state_dict, load_weights, read_checkpoint
from geosal.models.errors import ModelLoadError
from geosal.models.networks import adapt_first_conv, build_network, classification_architectures, first_conv
from geosal.models.spec import ModelSpec

SHIPPED_MODELS = {"ucmerced-resnet18": "ucmerced_resnet18.pt"}
DEFAULT_MODEL = "ucmerced-resnet18"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")


@dataclass
class LoadedModel:
    """A network ready for inference and the description it was built from.

    Attributes:
        network: the ``torch.nn.Module``, in eval mode.
        spec: the :class:`ModelSpec` that rebuilds it (small and picklable).
    """

    network: nn.Module
    spec: ModelSpec

    @property
    def classes(self) -> list[str]:
        """Class names, in output order (may be empty)."""
        return list(self.spec.classes)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """Turn raw pixels into the network's input.

        Args:
            images: ``uint8`` array ``[N, H, W, C]``; ``C`` must equal the
                model's ``input_bands``, or be 1 for a 3-band model whose spec
                says ``single_band="replicate"`` (the band is copied to R, G and B).

        Returns:
            ``float32`` tensor ``[N, input_bands, H, W]``: ``pixel * pixel_scale``,
            then ``(value - mean) / std`` per channel, on the network's device.

        Raises:
            ValueError: wrong dtype, rank or band count.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"preprocess expects uint8 pixels, got {images.dtype}; scale the data to 0-255 first")
        if images.ndim != 4:
            raise ValueError(f"preprocess expects [N, H, W, C], got shape {images.shape}")
        bands = images.shape[-1]
        spec = self.spec
        if bands != spec.input_bands:
            if bands == 1 and spec.input_bands == 3 and spec.single_band == "replicate":
                images = np.repeat(images, 3, axis=-1)
            else:
                raise ValueError(
                    f"images have {bands} bands but the model takes {spec.input_bands}: select bands "
                    f"(for example bands: [1, 2, 3]) or load the model with input_bands={bands}"
                )
        device = next(self.network.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
        mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
        return (x * spec.pixel_scale - mean) / std


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped inside the package."""
    return Path(str(resources.files("geosal.models") / "weights" / SHIPPED_MODELS[name]))


def resolve_spec(name_or_path: str | None = None, **overrides) -> ModelSpec:
    """The :class:`ModelSpec` for a model name or checkpoint, without building the network.

    Args:
        name_or_path: see the module docstring.
        overrides: :class:`ModelSpec` fields to replace (``architecture``,
            ``num_classes``, ``input_bands``, ``classes``, ``mean``, ``std``,
            ``gsd_m``, ``weights``...); ``None`` values are ignored.

    Raises:
        ModelLoadError: the source cannot be resolved.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(overrides) - set(ModelSpec.__dataclass_fields__)
    if unknown:
        raise ModelLoadError(f"unknown model option(s): {', '.join(sorted(unknown))}")
    name = DEFAULT_MODEL if name_or_path in (None, "", "default") else str(name_or_path)
    if name in SHIPPED_MODELS:
        return _checkpoint_spec(shipped_checkpoint(name), f"shipped:{name}", overrides)
    architecture, _, weights = name.partition(":")
    if name == "none":
        if "architecture" not in overrides:
            raise ModelLoadError("'none' (random weights) needs an architecture, for example resnet50:none")
        return ModelSpec(weights="none", **overrides)
    if architecture in classification_architectures():
        return _torchvision_spec(architecture, weights or "DEFAULT", overrides)
    path = Path(name)
    if path.exists() or path.suffix in CHECKPOINT_SUFFIXES or "/" in name:
        return _checkpoint_spec(path, f"checkpoint:{path.resolve()}", overrides)
    raise ModelLoadError(
        f"unknown model {name!r}: give a torchvision architecture (resnet50, resnet50:IMAGENET1K_V2), "
        f"a checkpoint file, '<architecture>:none' or a shipped model ({', '.join(SHIPPED_MODELS)})"
    )


def _torchvision_spec(architecture: str, weights: str, overrides: dict) -> ModelSpec:
    if weights.lower() == "none":
        return ModelSpec(architecture=architecture, weights="none", **{"num_classes": 1000, **overrides})
    try:
        enum = torchvision.models.get_model_weights(architecture)
        member = enum.DEFAULT if weights == "DEFAULT" else enum[weights]
    except KeyError:
        choices = ", ".join(w.name for w in torchvision.models.get_model_weights(architecture))
        raise ModelLoadError(f"{architecture} has no torchvision weights {weights!r}; choose one of: {choices}, none") from None
    transform = member.transforms()
    base = ModelSpec(
        architecture=architecture,
        weights=f"torchvision:{member.name}",
        num_classes=len(member.meta.get("categories", [])) or 1000,
        classes=tuple(member.meta.get("categories", ())),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        input_size=int(transform.crop_size[0]),
    )
    return base.with_overrides(**overrides)


def _checkpoint_spec(path: Path, weights: str, overrides: dict) -> ModelSpec:
    content = read_checkpoint(path)
    if content.get("format") == GEOSAL_FORMAT:
        spec = ModelSpec.from_dict(content["spec"])
        return spec.with_overrides(weights=weights, **overrides)
    state = extract_state_dict(content)
    architecture = overrides.get("architecture")
    if architecture is None:
        raise ModelLoadError(f"{path}: a plain state dict does not say its architecture; pass architecture=... (--architecture)")
    inferred = _infer_shapes(architecture, state)
    return ModelSpec(weights=weights, **{**inferred, **overrides})


def _infer_shapes(architecture: str, state: dict[str, torch.Tensor]) -> dict:
    """``num_classes`` and ``input_bands`` read off the checkpoint's first conv and last linear layer."""
    probe = build_network(architecture, num_classes=1000)
    conv_name, _ = first_conv(probe)
    linear_name = [n for n, m in probe.named_modules() if isinstance(m, nn.Linear)][-1]
    inferred = {}
    if f"{linear_name}.weight" in state:
        inferred["num_classes"] = int(state[f"{linear_name}.weight"].shape[0])
    if f"{conv_name}.weight" in state:
        inferred["input_bands"] = int(state[f"{conv_name}.weight"].shape[1])
    return inferred


def load_from_spec(spec: ModelSpec, device: str | torch.device = "cpu") -> LoadedModel:
    """Build the network a :class:`ModelSpec` describes and load its weights.

    This is what each Dask worker calls once.

    Raises:
        ModelLoadError: the weights cannot be fetched or do not fit.
    """
    source, _, where = spec.weights.partition(":")
    if source == "torchvision":
        network = build_network(spec.architecture, spec.num_classes)
        network.load_state_dict(_torchvision_state(spec.architecture, where))
        if spec.input_bands != 3:
            adapt_first_conv(network, spec.input_bands)
    else:
        network = build_network(spec.architecture, spec.num_classes, spec.input_bands)
        if source in ("checkpoint", "shipped"):
            path = shipped_checkpoint(where) if source == "shipped" else Path(where)
            load_weights(network, extract_state_dict(read_checkpoint(path)), str(path))
        elif source == "none":
            warnings.warn(
                f"{spec.architecture} has random weights: its saliency maps describe an untrained network",
                stacklevel=2,
            )
        else:
            raise ModelLoadError(f"unknown weights source {spec.weights!r}")
    return LoadedModel(network.eval().to(device), spec)


def _torchvision_state(architecture: str, weights_name: str) -> dict[str, torch.Tensor]:
    member = torchvision.models.get_model_weights(architecture)[weights_name]
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    try:
        return torch.hub.load_state_dict_from_url(member.url, progress=False, check_hash=True, weights_only=True)
    except (urllib.error.URLError, OSError) as error:
        raise ModelLoadError(
            f"cannot download torchvision weights {architecture}:{weights_name} ({getattr(error, 'reason', error)}); "
            f"offline, fetch {member.url} elsewhere and put it in {hub_dir}, or pass the file as the model path "
            f"with architecture={architecture}"
        ) from None


def load_model(name_or_path: str | None = None, device: str | torch.device = "cpu", **overrides) -> LoadedModel:
    """Load a model from any supported source (see the module docstring).

    Args:
        name_or_path: model name, ``architecture[:weights]`` or checkpoint path;
            ``None`` loads the shipped default.
        device: where to put the network.
        overrides: :class:`ModelSpec` fields, for example ``architecture="resnet50"``
            for a plain state dict, ``input_bands=4`` for an RGBN model,
            ``gsd_m=0.15`` or ``mean=...``/``std=...``.

    Returns:
        A :class:`LoadedModel` in eval mode.

    Raises:
        ModelLoadError: one clear line per failure.
    """
    return load_from_spec(resolve_spec(name_or_path, **overrides), device)
