"""A small, picklable description of a model: enough to rebuild it anywhere.

Dask workers receive a :class:`ModelSpec` (a few hundred bytes), never a
pickled network, and rebuild the model from it once per worker. A spec is
frozen and hashable (it is part of cache keys) and round-trips through JSON
(:meth:`ModelSpec.to_dict` / :meth:`ModelSpec.from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from geosal.models.weights_source import NO_WEIGHTS, WeightsSource

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FAMILIES = ("torchvision", "timm", "torchgeo", "segmentation", "factory")
INPUT_UNITS = ("stretched", "source")
DECODER_CHOICES = ("ignore", "include")
OptionValue = None | bool | int | float | str | tuple


def freeze_options(options: dict | tuple | None) -> tuple[tuple[str, Any], ...]:
    """Builder keyword arguments as a sorted tuple of ``(name, value)`` pairs (hashable).

    Values may be ``None``, booleans, numbers, strings or lists / tuples of those
    (lists become tuples).

    Raises:
        ValueError: a value of another type (a nested mapping, an object), in one line.
    """
    items = dict(options or ())
    frozen = []
    for key, value in sorted(items.items()):
        if not isinstance(key, str):
            raise ValueError(f"model option names must be strings, got {key!r}")
        frozen.append((key, _freeze_value(key, value)))
    return tuple(frozen)


def _freeze_value(key: str, value: Any) -> OptionValue:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(key, v) for v in value)
    raise ValueError(f"model option {key!r}: {type(value).__name__} values are not supported (use numbers, strings or lists)")


def thaw_options(options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The keyword arguments of :func:`freeze_options` as a dict (tuples become lists)."""
    return {key: _thaw_value(value) for key, value in options}


def _thaw_value(value: OptionValue) -> Any:
    return [_thaw_value(v) for v in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ModelSpec:
    """How to build a network and feed it.

    Attributes:
        architecture: the network within its family: a torchvision classifier
            (``resnet50``), a timm model (``convnext_tiny``), a TorchGeo builder
            (``resnet50``, ``unet``), a ``segmentation_models_pytorch``
            architecture (``Unet``) or, for ``family="factory"``, the factory
            ``package.module:function``.
        weights: a :class:`WeightsSource` (a ``"kind:name"`` string is accepted and converted).
        family: ``torchvision``, ``timm``, ``torchgeo``, ``segmentation`` or ``factory``.
        options: keyword arguments of the family's builder, as frozen pairs (see
            :func:`freeze_options`; a dict is accepted): timm's ``features_only``,
            segmentation's ``encoder_name``, a factory's own arguments.
        num_classes: outputs of the classifier (0: a backbone without one).
        classes: class names (may be empty).
        input_bands: channels the network's first convolution takes.
        band_names: the bands the model expects, in its input order (``("R", "G", "B")``,
            Sentinel-2 ``("B4", "B3", "B2")``); empty when the model does not declare them.
        single_band: what a one-band (panchromatic) image becomes when
            ``input_bands`` is 3: ``"replicate"`` (copied to every input channel)
            or ``"error"``.
        input_units: what the network's input is before ``pixel_scale`` / ``mean`` / ``std``:
            ``"stretched"`` (the scene-wide percentile stretch to 0..255 that geosal
            applies to any scene) or ``"source"`` (the scene's own values, such as
            Sentinel-2 reflectance x 10000, as TorchGeo's weights expect).
        pixel_scale: factor applied to the input values before normalisation
            (1/255 maps 0..255 to 0..1).
        mean, std: per-channel normalisation after scaling (length ``input_bands``, or 1 for all bands).
        gsd_m: ground sample distance in metres per pixel of the training
            images, or ``None`` when unknown (then scenes are not resampled).
        input_size: side of the square images the model was trained at, in pixels.
        decoder: for encoder-decoder (segmentation) networks: ``"ignore"`` (the
            encoder's scales, the decoder is not run) or ``"include"`` (the whole
            network runs and the decoder's stages are the scales).
    """

    architecture: str
    weights: WeightsSource = NO_WEIGHTS
    num_classes: int = 1000
    classes: tuple[str, ...] = field(default_factory=tuple)
    input_bands: int = 3
    single_band: str = "replicate"
    pixel_scale: float = 1 / 255
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    gsd_m: float | None = None
    input_size: int = 224
    family: str = "torchvision"
    options: tuple[tuple[str, Any], ...] = ()
    band_names: tuple[str, ...] = ()
    input_units: str = "stretched"
    decoder: str = "ignore"

    def __post_init__(self) -> None:
        if not isinstance(self.weights, WeightsSource):
            object.__setattr__(self, "weights", WeightsSource.from_dict(self.weights))
        if not isinstance(self.options, tuple) or any(not isinstance(p, tuple) for p in self.options):
            object.__setattr__(self, "options", freeze_options(self.options))
        for name in ("classes", "mean", "std", "band_names"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        for name, value, allowed in (("family", self.family, FAMILIES), ("input_units", self.input_units, INPUT_UNITS),
                                     ("decoder", self.decoder, DECODER_CHOICES)):
            if value not in allowed:
                raise ValueError(f"model {name} {value!r} is not one of: {', '.join(allowed)}")
        if self.band_names and len(self.band_names) != self.input_bands:
            raise ValueError(f"the model declares {len(self.band_names)} band names but takes {self.input_bands} bands")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.input_bands):
                raise ValueError(f"model {name} has {len(getattr(self, name))} values for {self.input_bands} bands")

    @property
    def builder_options(self) -> dict[str, Any]:
        """:attr:`options` as keyword arguments."""
        return thaw_options(self.options)

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (tuples become lists, weights a dict)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "weights":
                value = value.to_dict()
            elif f.name == "options":
                value = thaw_options(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        """Inverse of :meth:`to_dict`; reads the dicts of earlier versions too (weights as a
        ``"kind:name"`` string, no family: torchvision). Unknown keys are a :class:`ValueError`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model spec keys: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def with_overrides(self, **overrides) -> ModelSpec:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def unpinned(self) -> ModelSpec:
        """The same network with random weights: what scale discovery probes (a cache key
        shared by every checkpoint of one architecture)."""
        return replace(self, weights=NO_WEIGHTS)
