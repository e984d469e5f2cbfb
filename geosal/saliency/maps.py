"""The public entry point: SMOE saliency maps for a batch of images."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from geosal.saliency.combine import combine, resolve_weights, upsample
from geosal.saliency.hooks import ScaleHooks
from geosal.saliency.lovi import lovi
from geosal.saliency.normalize import get_normalizer
from geosal.saliency.scales import find_scale_layers
from geosal.saliency.statistics import get_statistic
from geosal.saliency.traced import TracingError, compile_saliency_network


@dataclass
class SaliencyResult:
    """Saliency of one batch of images.

    Attributes:
        scales: raw per-scale maps, finest first, each ``[B, h_k, w_k]`` float32.
        normalized: the same squashed into [0, 1].
        combined: ``[B, H, W]`` float32 in [0, 1] at the input size (Eq. 3).
        logits: the model's output ``[B, classes]`` when it returns one, else ``None``.
        layers: the scale-end module names.
        weights: the weights used for ``combined``.
    """

    scales: list[Tensor]
    normalized: list[Tensor]
    combined: Tensor
    logits: Tensor | None
    layers: list[str]
    weights: list[float] = field(default_factory=list)

    def upsampled(self) -> Tensor:
        """The normalised maps upsampled to the input size, ``[B, K, H, W]`` float32 in [0, 1]."""
        size = tuple(self.combined.shape[-2:])
        return torch.stack([upsample(m, size) for m in self.normalized], dim=1)

    def lovi(self) -> Tensor:
        """LOVI rendering of the normalised maps, ``[B, 3, H, W]`` RGB in [0, 1]."""
        return lovi(self.upsampled())


class SaliencyMaps:
    """SMOE Scale saliency computed inside the model's forward pass.

    Example::

        saliency = SaliencyMaps(model)          # scale ends found automatically
        result = saliency(images)               # images: [B, 3, H, W]
        result.combined                         # [B, H, W] in [0, 1]

    Args:
        model: a CNN; it is used as is (call ``model.eval()`` yourself: in
            training mode batch-norm mixes images and the maps depend on the batch).
        layers: ``"auto"`` (:func:`find_scale_layers` on the first batch's
            shape) or explicit module names, finest first.
        statistic: name of the per-location statistic (default ``smoe_scale``).
        weights: ``"equal"``, ``"linear"``, ``"prior"`` or a list, for Eq. 3.
        normalization: ``"normal_cdf"`` (the paper), ``"gamma_cdf"`` or ``"min_max"``.
        compile: trace the model with the statistic inside and ``torch.compile``
            it (fastest; falls back to hooks if the model cannot be traced).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Sequence[str] = "auto",
        statistic: str = "smoe_scale",
        weights: str | Sequence[float] = "equal",
        normalization: str = "normal_cdf",
        compile: bool = False,
    ):
        self.model = model
        self.statistic = get_statistic(statistic)
        self.normalize = get_normalizer(normalization)
        self.weights = weights
        self.compile = compile
        self.layers: list[str] | None = None if layers == "auto" else list(layers)
        if self.layers is not None:
            resolve_weights(weights, len(self.layers))
        self._compiled: nn.Module | None = None

    def resolve_layers(self, images: Tensor) -> list[str]:
        """The scale-end module names, finest first; with ``layers="auto"`` they are
        found (once) with :func:`find_scale_layers` for the shape of ``images`` ``[B, C, H, W]``."""
        if self.layers is None:
            self.layers = find_scale_layers(self.model, (1, *images.shape[1:]))
            resolve_weights(self.weights, len(self.layers))
        return self.layers

    def raw_maps(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Run the model once; return the raw per-scale maps and the model output.

        Args:
            images: ``[B, C, H, W]`` as the model expects them.

        Returns:
            ``(maps, output)``: maps finest first, each ``[B, h_k, w_k]`` float32.
        """
        layers = self.resolve_layers(images)
        if self.model.training:
            warnings.warn("model is in training mode: batch-norm makes each image's maps depend on the batch", stacklevel=3)
        with torch.no_grad():
            if self.compile and not self.statistic.pre_activation:
                compiled = self._compiled_network(layers)
                if compiled is not None:
                    try:
                        output, maps = compiled(images)
                        return list(maps), output
                    except torch.cuda.OutOfMemoryError:
                        raise  # the batch does not fit: say so, do not hide it behind a slower path
                    except Exception as error:  # noqa: BLE001 - the compiler failed at its first call (no C compiler, Triton...)
                        warnings.warn(f"torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                                      "computing saliency with hooks instead", stacklevel=3)
                        self.compile = False
            with ScaleHooks(self.model, layers, self.statistic) as hooks:
                output = self.model(images)
            return list(hooks.maps), output

    def _compiled_network(self, layers: list[str]):
        """The traced, compiled network (built on first use), or None when the model cannot be traced."""
        if self._compiled is None:
            try:
                self._compiled = compile_saliency_network(self.model, layers, self.statistic)
            except TracingError as error:
                warnings.warn(f"{error}; computing saliency with hooks instead", stacklevel=4)
                self.compile = False
        return self._compiled

    def __call__(self, images: Tensor) -> SaliencyResult:
        """Saliency of ``images`` (``[B, C, H, W]``); see :class:`SaliencyResult`."""
        maps, output = self.raw_maps(images)
        return self.result_from(maps, output, tuple(images.shape[-2:]))

    def result_from(self, maps: list[Tensor], output, size: tuple[int, int]) -> SaliencyResult:
        """Normalise and combine raw ``maps`` (from :meth:`raw_maps`) at ``size`` = ``(H, W)``."""
        normalized = [self.normalize(m) for m in maps]
        weights = resolve_weights(self.weights, len(maps))
        combined = combine(normalized, size, weights)
        logits = output if isinstance(output, Tensor) and output.ndim == 2 else None
        return SaliencyResult(maps, normalized, combined, logits, list(self.layers), weights)
