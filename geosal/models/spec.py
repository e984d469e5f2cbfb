"""A small, picklable description of a model: enough to rebuild it anywhere.

Dask workers receive a :class:`ModelSpec` (a few hundred bytes), never a
pickled network, and rebuild the model from it once per worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """How to build a network and feed it.

    Attributes:
        architecture: torchvision classification architecture name (``resnet50``, ``vgg16``, ...).
        weights: where the weights come from: ``"none"`` (random initialisation),
            ``"torchvision:<NAME>"`` (a torchvision weight enum such as
            ``IMAGENET1K_V2``), ``"checkpoint:<path>"`` (a local file) or
            ``"shipped:<name>"`` (a checkpoint inside the geosal package).
        num_classes: outputs of the classifier.
        classes: class names (may be empty).
        input_bands: channels the network's first convolution takes.
        single_band: what a one-band (panchromatic) image becomes when
            ``input_bands`` is 3: ``"replicate"`` (copied to every input channel)
            or ``"error"``.
        pixel_scale: factor applied to raw uint8 pixels before normalisation
            (1/255 maps 0..255 to 0..1).
        mean, std: per-channel normalisation after scaling (length ``input_bands``).
        gsd_m: ground sample distance in metres per pixel of the training
            images, or ``None`` when unknown (then scenes are not resampled).
        input_size: side of the square images the model was trained at, in pixels.
    """

    architecture: str
    weights: str = "none"
    num_classes: int = 1000
    classes: tuple[str, ...] = field(default_factory=tuple)
    input_bands: int = 3
    single_band: str = "replicate"
    pixel_scale: float = 1 / 255
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    gsd_m: float | None = None
    input_size: int = 224

    def to_dict(self) -> dict:
        """Plain JSON-serialisable dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        """Inverse of :meth:`to_dict`; unknown keys are a :class:`ValueError`."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model spec keys: {', '.join(sorted(unknown))}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def with_overrides(self, **overrides) -> ModelSpec:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})
