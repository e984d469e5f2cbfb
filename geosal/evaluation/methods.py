"""The saliency methods compared by ``geosal evaluate``, in one registry.

Every method maps a batch of normalised images ``[B, 3, H, W]`` and the model
to saliency ``[B, H, W]`` float32 (larger = more important), at the input size:

- ``random``: a uniform random map per image, seeded by ``(seed, image id)``,
  so the same image always gets the same map whatever the batch;
- SMOE Scale combined with ``equal`` / ``linear`` / ``prior`` layer weights
  (``smoe_equal``, ``smoe_linear``, ``smoe_prior``) and its single-scale maps
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

from geosal.errors import GeosalError
from geosal.saliency import FastCAM, SaliencyMaps, find_scale_layers
from geosal.saliency.combine import combine, upsample
from geosal.saliency.statistics import STATISTICS


class EvaluationError(GeosalError, ValueError):
    """A request the evaluation cannot serve (unknown method, wrong model or data); one line for the user."""


SCALES = 5
"""Scale ends of the evaluated networks (ResNets: stem ReLU and layer1..layer4)."""

TABLE1_STATISTICS: dict[str, str] = {
    "smoe": "smoe_scale",
    "std": "std",
    "mean": "mean",
    "shannon_entropy": "shannon_entropy",
    "log_normal_mean": "log_normal_mean",
    "log_normal_entropy": "log_normal_entropy",
    "truncated_normal_mean": "truncated_normal_mean",
    "truncated_normal_std": "truncated_normal_std",
    "truncated_normal_entropy": "truncated_normal_entropy",
}
"""Method-name prefix -> statistic of :data:`geosal.saliency.STATISTICS`: Table 1's rows."""

WEIGHT_LABELS = {"prior": "Prior Layer Weights", "linear": "Layer Weights [1,2,3,4,5]", "equal": "Layer Weights [1,1,1,1,1]"}


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
    ig_steps: int = 4
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


def _build() -> dict[str, Method]:
    methods: list[Method] = [Method("random", "Random", "baseline", _random)]
    for weights in ("prior", "linear", "equal"):
        methods.append(Method(f"smoe_{weights}", f"SMOE Scale + {WEIGHT_LABELS[weights]}", "smoe",
                              _combined("smoe_scale", weights), group="smoe_scale"))
    for prefix, statistic in TABLE1_STATISTICS.items():
        label = STATISTICS[statistic].label
        if prefix != "smoe":
            methods.append(Method(f"{prefix}_equal", f"{label} + {WEIGHT_LABELS['equal']}", "statistic",
                                  _combined(statistic, "equal"), group=statistic))
        for layer in range(SCALES):
            family = "smoe" if prefix == "smoe" else "layer"
            methods.append(Method(f"{prefix}_L{layer + 1}", f"{label} L{layer + 1}", family,
                                  _single_scale(statistic, layer), group=statistic))
    for layer in range(SCALES):
        methods.append(Method(f"random_L{layer + 1}", f"Random L{layer + 1}", "layer", _random_layer(layer), group="smoe_scale"))
    methods += [
        Method("fastcam", "Fast-CAM (SMOE Scale x Grad-CAM++)", "cam", _cam("gradcam++", True), group="gradcam++"),
        Method("gradcampp", "Grad-CAM++", "cam", _cam("gradcam++", False), group="gradcam++"),
        Method("gradcam", "Grad-CAM", "cam", _cam("gradcam", False), group="gradcam"),
    ]
    labels = {"gradient": "Gradient", "guided_backprop": "Guided Backprop", "integrated_gradients": "Integrated Grad."}
    for kind, label in labels.items():
        methods.append(Method(kind, label, "gradient", _gradient_method(kind, False)))
        methods.append(Method(f"{kind}_sg2", f"{label} -w- SmoothGrad Sq.", "gradient", _gradient_method(kind, True)))
    return {m.name: m for m in methods}


METHODS: dict[str, Method] = _build()
"""Every method, by name."""

MAIN_METHODS: tuple[str, ...] = tuple(name for name, m in METHODS.items() if m.family != "layer")
"""The methods of the method comparison (everything but the non-SMOE single-scale
maps and the per-scale random maps, which only the ``layers`` protocol uses)."""

KAR_ROAR_DEFAULT: tuple[str, ...] = (
    "random", "smoe_prior", "smoe_linear", "smoe_equal", "gradcampp", "fastcam",
    "gradient_sg2", "guided_backprop_sg2",
)
"""The reduced default method set of the retraining protocol. Integrated
Gradients with SmoothGrad-squared is left out of it because its maps alone cost
about 45 minutes on a 2-core CPU (1.6 s per image); ``--methods`` adds it."""


def layer_methods(prefixes: Sequence[str] | None = None) -> list[str]:
    """Single-scale methods of the ``layers`` protocol: ``random_L1..L5`` and
    ``<prefix>_L1..L5`` for each Table 1 statistic (default: all of them)."""
    prefixes = list(TABLE1_STATISTICS) if prefixes is None else list(prefixes)
    unknown = [p for p in prefixes if p not in TABLE1_STATISTICS]
    if unknown:
        raise EvaluationError(f"unknown statistic(s) {unknown}; choose from {', '.join(TABLE1_STATISTICS)}")
    return [f"random_L{k}" for k in range(1, SCALES + 1)] + [f"{p}_L{k}" for p in prefixes for k in range(1, SCALES + 1)]


def get_methods(names: Sequence[str] | str) -> list[Method]:
    """Methods by name; ``"all"`` is :data:`MAIN_METHODS`, ``"default"`` the
    reduced retraining set. A comma-separated string is accepted.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    expanded: list[str] = []
    for name in names:
        expanded += list(MAIN_METHODS) if name == "all" else list(KAR_ROAR_DEFAULT) if name == "default" else [name]
    unknown = [n for n in expanded if n not in METHODS]
    if unknown:
        raise EvaluationError(f"unknown method(s) {', '.join(unknown)}; 'geosal evaluate --list-methods' lists them "
                              f"(also 'all' = the {len(MAIN_METHODS)} compared methods, 'default' = the retraining set)")
    return [METHODS[n] for n in dict.fromkeys(expanded)]


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
    for method in methods:
        if warmup:
            context.new_batch()
            method(context, images[: min(2, len(images))], ids[: min(2, len(images))])
        started = time.perf_counter()
        for first in range(0, len(images), batch_size):
            context.new_batch()
            method(context, images[first : first + batch_size], ids[first : first + batch_size])
        seconds[method.name] = (time.perf_counter() - started) / len(images)
    context.new_batch()
    return seconds
