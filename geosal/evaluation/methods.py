"""The saliency methods compared by ``geosal evaluate``, in one registry.

Their names, labels and families are declared, without torch, in
:mod:`geosal.evaluation.catalog`; this module gives each its function.

Every method maps a batch of normalised images ``[B, 3, H, W]`` and the model
to saliency ``[B, H, W]`` float32 (larger = more important), at the input size:

- ``random``: a uniform random map per image, seeded by ``(seed, image id)``,
  so the same image always gets the same map whatever the batch;
- SMOE Scale combined with ``equal`` / ``linear`` / ``prior`` layer weights
  (``smoe_equal``, ``smoe_linear``, ``smoe_prior``), with weights learned from
  the ``layers`` protocol (``smoe_learned``) and its single-scale maps
  ``smoe_L1`` .. ``smoe_L5`` (normalised, upsampled bilinearly): Table 4 / 5;
- the other statistics of Table 1 with equal weights (``std_equal``,
  ``mean_equal``, ``shannon_entropy_equal``, ``log_normal_mean_equal``, ...)
  and their single-scale maps (``std_L1`` ...; used by the ``layers`` protocol);
- ``fastcam`` (SMOE Scale x Grad-CAM++, Section 4), ``gradcam``, ``gradcampp``;
- captum's ``gradient`` (Simonyan et al.), ``guided_backprop`` and
  ``integrated_gradients``, each also with SmoothGrad-squared (``*_sg2``:
  NoiseTunnel ``smoothgrad_sq``, 15 samples as in the paper).

Gradient attributions ``[B, 3, H, W]`` are reduced to a map as Hooker et al.
do: absolute value, summed over the colour channels (``channel_reduce="max"``
takes the maximum instead, as Simonyan et al.). All class-specific methods
explain the model's predicted class.

Within one batch, methods that share a forward pass (all SMOE maps of one
statistic, Grad-CAM++ and Fast-CAM) reuse it through :class:`MethodContext`'s
memo; :func:`time_methods` times every method alone, without that sharing.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from geosal.evaluation.catalog import METHOD_NAMES, SCALES, method_names
from geosal.evaluation.errors import EvaluationError
from geosal.saliency import FastCAM, SaliencyMaps, find_scale_layers
from geosal.saliency.combine import combine, upsample


@dataclass(frozen=True)
class MethodOptions:
    """Parameters of the methods (all recorded with the results).

    Attributes:
        seed: seeds the random maps and the SmoothGrad noise.
        nt_samples: SmoothGrad samples (the paper and Hooker et al.: 15).
        noise_level: SmoothGrad noise standard deviation as a fraction of the
            input range (Smilkov et al. recommend 10-20%).
        input_range: the range of the normalised inputs (``1 / std`` averaged
            over channels for images in [0, 1]); set by the runner from the model.
        ig_steps: steps of Integrated Gradients (captum's Gauss-Legendre quadrature; its default is 50).
        channel_reduce: ``"sum"`` or ``"max"`` of the absolute gradient over channels.
        smoe_weights: layer weights of the SMOE map inside Fast-CAM.
    """

    seed: int = 0
    nt_samples: int = 15
    noise_level: float = 0.15
    input_range: float = 4.0
    ig_steps: int = 20
    channel_reduce: str = "sum"
    smoe_weights: str = "equal"

    def __post_init__(self):
        if self.channel_reduce not in ("sum", "max"):
            raise ValueError(f"channel_reduce must be 'sum' or 'max', got {self.channel_reduce!r}")


class MethodContext:
    """The model plus what methods share within one batch.

    Args:
        model: classifier in eval mode returning logits ``[B, classes]``.
        options: method parameters.
    """

    def __init__(self, model: nn.Module, options: MethodOptions = MethodOptions()):
        self.model = model.eval()
        self.options = options
        self.memo: dict = {}
        self.learned_weights: tuple[float, ...] | None = None
        """Layer weights of ``smoe_learned`` (set by the runner from the ``layers`` protocol's results)."""
        self._gradient_model: nn.Module | None = None
        # The scale ends depend on the architecture, not the image size: find them once at 224 px
        # (at very small inputs the coarsest scale collapses to 1 x 1 and would not be found).
        self.layers = find_scale_layers(self.model, (1, 3, 224, 224))
        if len(self.layers) != SCALES:
            raise EvaluationError(f"the evaluation expects {SCALES} scales (a ResNet); the model has {len(self.layers)}: {self.layers}")

    def new_batch(self) -> None:
        """Forget what the previous batch computed."""
        self.memo.clear()

    @property
    def gradient_model(self) -> nn.Module:
        """A copy of the model whose ReLUs are not in-place (captum's guided
        backprop hooks cannot modify views in place); same weights, eval mode."""
        if self._gradient_model is None:
            clone = copy.deepcopy(self.model).eval()
            for module in clone.modules():
                if isinstance(module, nn.ReLU):
                    module.inplace = False
            for parameter in clone.parameters():
                parameter.requires_grad_(False)
            self._gradient_model = clone
        return self._gradient_model

    def targets(self, images: Tensor) -> Tensor:
        """Predicted class of each image ``[B]`` int64 (memoised per batch)."""
        if "targets" not in self.memo:
            with torch.no_grad():
                self.memo["targets"] = self.model(images).argmax(1)
        return self.memo["targets"]

    def smoe(self, images: Tensor, statistic: str):
        """:class:`geosal.saliency.SaliencyResult` of ``statistic`` (memoised per batch)."""
        key = ("smoe", statistic)
        if key not in self.memo:
            result = SaliencyMaps(self.model, layers=self.layers, statistic=statistic, weights="equal")(images)
            self.memo[key] = result
            if result.logits is not None:
                self.memo.setdefault("targets", result.logits.argmax(1))
        return self.memo[key]

    def fast_cam(self, images: Tensor, cam: str):
        """:class:`geosal.saliency.FastCAMResult` for ``cam`` (memoised per batch)."""
        key = ("fastcam", cam)
        if key not in self.memo:
            self.memo[key] = FastCAM(self.model, layers=self.layers, method=cam, weights=self.options.smoe_weights)(images)
        return self.memo[key]


MethodFunction = Callable[[MethodContext, Tensor, Sequence[int]], Tensor]


@dataclass(frozen=True)
class Method:
    """A named saliency method.

    Attributes:
        name: registry key (also used in file names).
        label: the name in tables (the paper's where it has one).
        family: ``baseline``, ``smoe``, ``statistic``, ``layer``, ``cam`` or ``gradient``.
        function: ``function(context, images, image_ids) -> [B, H, W]`` float32.
        group: methods with the same group share a forward pass within a batch,
            so they are computed together.
    """

    name: str
    label: str
    family: str
    function: MethodFunction = field(repr=False)
    group: str = ""

    def __call__(self, context: MethodContext, images: Tensor, image_ids: Sequence[int] | None = None,
                 shared: bool = False) -> Tensor:
        """Saliency ``[B, H, W]`` float32 of ``images`` ``[B, 3, H, W]``.

        ``shared=True`` (used by :func:`compute_batch`) reuses what other methods
        computed on the same batch; otherwise the context's memo is cleared first.
        """
        ids = list(range(len(images))) if image_ids is None else [int(i) for i in image_ids]
        if len(ids) != len(images):
            raise ValueError(f"got {len(ids)} image ids for {len(images)} images")
        if not shared:
            context.new_batch()
        out = self.function(context, images, ids).float()
        if out.shape != (images.shape[0], *images.shape[-2:]):
            raise RuntimeError(f"method {self.name} returned shape {tuple(out.shape)} for images {tuple(images.shape)}")
        return out


# --- the method functions ------------------------------------------------------------------------


def random_map(seed: int, image_id: int, size: tuple[int, int], resolution: tuple[int, int] | None = None) -> Tensor:
    """Uniform random saliency of one image, ``[H, W]`` float32, seeded by ``(seed, image_id)``.
    With ``resolution`` it is drawn at that coarser size and upsampled bilinearly
    (the random baseline of one scale of the network)."""
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(image_id))
    if resolution is None or tuple(resolution) == tuple(size):
        return torch.rand(*size, generator=generator)
    return upsample(torch.rand(1, *resolution, generator=generator), size)[0]


def _random(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
    size = tuple(images.shape[-2:])
    return torch.stack([random_map(context.options.seed, i, size) for i in ids]).to(images.device)


def _random_layer(layer: int) -> MethodFunction:
    def function(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
        size = tuple(images.shape[-2:])
        resolution = tuple(context.smoe(images, "smoe_scale").normalized[layer].shape[-2:])
        seed = context.options.seed + 7919 * (layer + 1)
        return torch.stack([random_map(seed, i, size, resolution) for i in ids]).to(images.device)

    return function


def _combined(statistic: str, weights: str) -> MethodFunction:
    def function(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
        result = context.smoe(images, statistic)
        return combine(result.normalized, tuple(images.shape[-2:]), weights)

    return function


def _learned(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
    if context.learned_weights is None:
        raise EvaluationError("smoe_learned needs layer weights learned by the layers protocol: run "
                              "'geosal evaluate --protocol layers' first")
    return combine(context.smoe(images, "smoe_scale").normalized, tuple(images.shape[-2:]), context.learned_weights)


def _single_scale(statistic: str, layer: int) -> MethodFunction:
    def function(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
        result = context.smoe(images, statistic)
        return upsample(result.normalized[layer], tuple(images.shape[-2:]))

    return function


def _cam(cam: str, fast: bool) -> MethodFunction:
    def function(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
        result = context.fast_cam(images, cam)
        return result.fast_cam if fast else result.cam

    return function


def _reduce(attribution: Tensor, how: str) -> Tensor:
    magnitude = attribution.detach().float().abs()
    return magnitude.sum(1) if how == "sum" else magnitude.amax(1)


def _gradient_method(kind: str, smooth: bool) -> MethodFunction:
    def function(context: MethodContext, images: Tensor, ids: Sequence[int]) -> Tensor:
        from captum.attr import GuidedBackprop, IntegratedGradients, NoiseTunnel, Saliency

        options = context.options
        target = context.targets(images)
        model = context.gradient_model
        kwargs: dict = {"target": target}
        if kind == "gradient":
            explainer = Saliency(model)
            kwargs["abs"] = False  # absolute value (or square) applied below / by SmoothGrad-squared
        elif kind == "guided_backprop":
            explainer = GuidedBackprop(model)
        else:
            explainer = IntegratedGradients(model)
            kwargs.update(baselines=0.0, n_steps=options.ig_steps, internal_batch_size=32)
        x = images.detach().clone().requires_grad_(True)
        if smooth:
            # Seed per batch from the image ids: reproducible, and independent of the other methods.
            torch.manual_seed(options.seed * 1_000_003 + int(ids[0]) * 31 + len(ids))
            tunnel = NoiseTunnel(explainer)
            attribution = tunnel.attribute(
                x, nt_type="smoothgrad_sq", nt_samples=options.nt_samples, nt_samples_batch_size=5,
                stdevs=options.noise_level * options.input_range, **kwargs,
            )
        else:
            attribution = explainer.attribute(x, **kwargs)
        return _reduce(attribution, options.channel_reduce)

    return function


# --- the registry --------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., MethodFunction]] = {
    "random": lambda: _random,
    "random_layer": _random_layer,
    "combined": _combined,
    "learned": lambda: _learned,
    "single_scale": _single_scale,
    "cam": _cam,
    "gradient": _gradient_method,
}
"""How each ``kind`` of :class:`~geosal.evaluation.catalog.MethodName` becomes a function."""

METHODS: dict[str, Method] = {
    name: Method(name, entry.label, entry.family, _BUILDERS[entry.kind](*entry.arguments), entry.group)
    for name, entry in METHOD_NAMES.items()
}
"""Every method of :data:`~geosal.evaluation.catalog.METHOD_NAMES`, by name, with its function."""


def get_methods(names: Sequence[str] | str) -> list[Method]:
    """Methods by name; ``"all"`` is :data:`~geosal.evaluation.catalog.MAIN_METHODS`, ``"default"`` the
    reduced retraining set. A comma-separated string is accepted.

    Raises:
        EvaluationError: an unknown name, listing the known ones.
    """
    return [METHODS[name] for name in method_names(names)]


def compute_batch(context: MethodContext, methods: Sequence[Method], images: Tensor, image_ids: Sequence[int]) -> dict[str, Tensor]:
    """All ``methods`` on one batch, sharing forward passes: ``{name: [B, H, W]}``."""
    context.new_batch()
    try:
        return {m.name: m(context, images, image_ids, shared=True) for m in methods}
    finally:
        context.new_batch()


def time_methods(
    context: MethodContext, methods: Sequence[Method], images: Tensor, image_ids: Sequence[int] | None = None,
    batch_size: int = 8, warmup: bool = True,
) -> dict[str, float]:
    """Wall seconds per image of each method computed ALONE (no shared passes).

    One warm-up batch (not timed) per method, then ``images`` in batches of
    ``batch_size``. Returns ``{name: seconds_per_image}``.
    """
    ids = list(range(len(images))) if image_ids is None else list(image_ids)
    seconds: dict[str, float] = {}

    def synchronise() -> None:  # CUDA runs asynchronously: time the work, not its launch
        if images.device.type == "cuda":
            torch.cuda.synchronize(images.device)

    for method in methods:
        if warmup:
            context.new_batch()
            method(context, images[: min(2, len(images))], ids[: min(2, len(images))])
        synchronise()
        started = time.perf_counter()
        for first in range(0, len(images), batch_size):
            context.new_batch()
            method(context, images[first : first + batch_size], ids[first : first + batch_size])
        synchronise()
        seconds[method.name] = (time.perf_counter() - started) / len(images)
    context.new_batch()
    return seconds
