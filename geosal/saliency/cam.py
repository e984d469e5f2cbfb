"""Fast-CAM: Grad-CAM / Grad-CAM++ at the last scale, times the SMOE map (Section 4.2).

The trunk runs without autograd; only the layers after the last scale end (for
a ResNet: global pooling and the classifier) are differentiated. This is done
by a forward hook on the last scale end that hands the rest of the network a
fresh leaf tensor with gradients enabled, so the backward pass is a few small
ops instead of the whole network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from geosal.saliency.combine import upsample
from geosal.saliency.hooks import ScaleHooks, resolve_modules
from geosal.saliency.maps import SaliencyMaps, SaliencyResult

CAM_METHODS = ("gradcam", "gradcam++")


def grad_cam(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM: ``relu(sum_c mean_hw(g_c) * A_c)``.

    Args:
        activations, gradients: ``[B, C, h, w]``: the last scale's activation and
            the gradient of the target score with respect to it.

    Returns:
        ``[B, h, w]`` float32, >= 0 (not normalised).
    """
    weights = gradients.float().mean(dim=(2, 3), keepdim=True)
    return (weights * activations.float()).sum(1).clamp_min(0)


def grad_cam_plus_plus(activations: Tensor, gradients: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhay et al. 2018) with the usual exponential-score closed form:
    ``alpha = g^2 / (2 g^2 + sum_hw(A) g^3)``, channel weight ``sum_hw(alpha * relu(g))``.

    Args / Returns: as :func:`grad_cam`.
    """
    a, g = activations.float(), gradients.float()
    g2 = g * g
    denominator = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g
    nonzero = denominator != 0
    alpha = torch.where(nonzero, g2 / torch.where(nonzero, denominator, torch.ones_like(denominator)), torch.zeros_like(g))
    weights = (alpha * g.clamp_min(0)).sum(dim=(2, 3), keepdim=True)
    return (weights * a).sum(1).clamp_min(0)


def normalize_cam(cam: Tensor) -> Tensor:
    """Divide each ``[h, w]`` map by its maximum: ``[B, h, w]`` >= 0 -> [0, 1]; all-zero maps stay 0."""
    peak = cam.flatten(1).amax(1).view(-1, 1, 1)
    return torch.where(peak > 0, cam / peak.clamp_min(1e-30), torch.zeros_like(cam))


class _GradientAfter:
    """Context manager: the output of ``module`` becomes a leaf with gradients on,
    so everything after it is differentiated and nothing before it."""

    def __init__(self, model: nn.Module, layer: str):
        (self.module,) = resolve_modules(model, [layer])
        self.activation: Tensor | None = None
        self._handle = None

    def _hook(self, module, args, output: Tensor) -> Tensor:
        self.activation = output.detach().requires_grad_(True)
        torch.set_grad_enabled(True)  # restored by the caller's no_grad() on exit
        return self.activation.clone()  # a non-leaf, so in-place ops downstream are allowed

    def __enter__(self) -> _GradientAfter:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc_info) -> None:
        self._handle.remove()


@dataclass
class FastCAMResult:
    """Result of :class:`FastCAM`.

    Attributes:
        saliency: the SMOE saliency of the same forward pass.
        cam: ``[B, H, W]`` class activation map in [0, 1] at the input size.
        target: ``[B]`` int64 class index explained for each image.
        fast_cam: ``combined * cam``, ``[B, H, W]`` in [0, 1].
        non_class: ``combined * (1 - cam)``, ``[B, H, W]`` in [0, 1].
    """

    saliency: SaliencyResult
    cam: Tensor
    target: Tensor

    @property
    def fast_cam(self) -> Tensor:
        return self.saliency.combined * self.cam

    @property
    def non_class(self) -> Tensor:
        return self.saliency.combined * (1 - self.cam)


class FastCAM:
    """SMOE saliency and a class activation map from one forward pass.

    Example::

        fast_cam = FastCAM(model, method="gradcam++")
        result = fast_cam(images)                  # explains the predicted classes
        result = fast_cam(images, target=[3] * 8)  # or given classes

    Args:
        model: a classifier returning logits ``[B, classes]``, in eval mode.
        layers, statistic, weights, normalization: as :class:`SaliencyMaps`; the
            class map is taken at the last (coarsest) scale end.
        method: ``"gradcam"`` or ``"gradcam++"``.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: str | Sequence[str] = "auto",
        method: str = "gradcam++",
        statistic: str = "smoe_scale",
        weights: str | Sequence[float] = "equal",
        normalization: str = "normal_cdf",
    ):
        if method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method {method!r}; choose one of: {', '.join(CAM_METHODS)}")
        self.method = method
        self.saliency = SaliencyMaps(model, layers, statistic, weights, normalization)
        self.model = model

    def raw_maps_and_cam(
        self, images: Tensor, target: Tensor | Sequence[int] | int | None = None
    ) -> tuple[list[Tensor], Tensor, Tensor, Tensor]:
        """One forward pass: the raw scale maps, the unnormalised class map, the logits and the targets.

        The trunk runs without autograd; only the layers after the last scale
        end are differentiated (see the module docstring). Use it where the class
        maps of many images must be normalised together (the scene pipeline
        normalises with scene-wide statistics); :meth:`__call__` normalises each image.

        Args:
            images: ``[B, C, H, W]`` as the model expects them (autocast is honoured).
            target: class index per image ``[B]``, one index for all, or ``None`` (the predicted class).

        Returns:
            ``(maps, cam, logits, target)``: the raw maps as :meth:`SaliencyMaps.raw_maps`
            gives them (finest first, ``[B, h_k, w_k]`` float32); ``cam`` ``[B, h_n, w_n]``
            float32 >= 0 at the last scale, by this object's ``method``; ``logits``
            ``[B, classes]`` (detached); ``target`` ``[B]`` int64.

        Raises:
            ValueError: the model does not return logits ``[B, classes]``.
        """
        layers = self.saliency.resolve_layers(images)
        with ScaleHooks(self.model, layers, self.saliency.statistic) as hooks, _GradientAfter(self.model, layers[-1]) as head:
            with torch.no_grad():
                logits = self.model(images)
                if not isinstance(logits, Tensor) or logits.ndim != 2:
                    raise ValueError("Fast-CAM needs a classifier that returns logits [B, classes]")
                if target is None:
                    target = logits.detach().argmax(1)
                target = torch.as_tensor(target, dtype=torch.long, device=logits.device).expand(logits.shape[0]).reshape(-1)
                score = logits.float().gather(1, target.view(-1, 1)).sum()
                (gradients,) = torch.autograd.grad(score, head.activation)
        cam_function = grad_cam if self.method == "gradcam" else grad_cam_plus_plus
        return list(hooks.maps), cam_function(head.activation.detach(), gradients), logits.detach(), target

    def __call__(self, images: Tensor, target: Tensor | Sequence[int] | None = None) -> FastCAMResult:
        """Explain ``images`` ``[B, C, H, W]`` for ``target`` (``[B]`` class indices; default: predicted)."""
        maps, cam, logits, target = self.raw_maps_and_cam(images, target)
        size = tuple(images.shape[-2:])
        saliency = self.saliency.result_from(maps, logits, size)
        return FastCAMResult(saliency, upsample(normalize_cam(cam), size).clamp_(0, 1), target)
