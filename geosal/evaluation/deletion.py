"""Deletion and insertion curves (Petsiuk et al. 2018, RISE).

Deletion: starting from the image, the most salient pixels are progressively
replaced by a substrate (the dataset mean, 0 after normalisation, as in the
RISE code; or a blurred copy), in ``steps`` equal steps, and the softmax
probability of the class predicted on the unmodified image is tracked. A good
map makes it fall fast: LOWER area under the curve is better.

Insertion: starting from a blurred copy (Gaussian, kernel 11, sigma 5, as in
RISE), the most salient pixels of the original are put back. A good map makes
the probability rise fast: HIGHER area is better.

The curves have ``steps + 1`` points at fractions ``0, 1/steps, ..., 1``; the
area is the trapezoidal rule over [0, 1]. Pixel order: :func:`saliency_ranks`
(ties broken by a seeded random permutation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from geosal.evaluation.masking import saliency_ranks
from geosal.evaluation.scores import auc
from geosal.saliency.masks import selected_count

KINDS = ("deletion", "insertion")


def blur(images: Tensor, kernel: int = 11, sigma: float = 5.0) -> Tensor:
    """Gaussian blur of ``[B, C, H, W]`` (RISE's insertion substrate)."""
    return TF.gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[sigma, sigma])


def curves(
    probabilities: Callable[[Tensor], Tensor], images: Tensor, saliency: Tensor, image_ids: Sequence[int],
    kind: str, steps: int = 20, substrate: str = "mean", seed: int = 0, target: Tensor | None = None,
) -> np.ndarray:
    """Deletion or insertion curve of each image.

    Args:
        probabilities: normalised images ``[B, C, H, W]`` -> softmax ``[B, classes]``.
        images: normalised ``[B, C, H, W]``.
        saliency: ``[B, H, W]``.
        kind: ``"deletion"`` or ``"insertion"``.
        steps: number of steps (the curve has ``steps + 1`` points).
        substrate: what deleted pixels become: ``"mean"`` (0) or ``"blur"``;
            insertion always starts from the blurred image.
        target: class tracked per image (default: predicted on the unmodified images).

    Returns:
        ``[B, steps + 1]`` float64 probabilities of the target class.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if substrate not in ("mean", "blur"):
        raise ValueError(f"substrate must be 'mean' or 'blur', got {substrate!r}")
    if target is None:
        target = probabilities(images).argmax(1)
    ranks = saliency_ranks(saliency, image_ids, seed).unsqueeze(1)
    blurred = blur(images)
    if kind == "deletion":
        start, end = images, (torch.zeros_like(images) if substrate == "mean" else blurred)
    else:
        start, end = blurred, images
    pixels = saliency[0].numel()
    points = []
    for step in range(steps + 1):
        changed = ranks < selected_count(step / steps, pixels)
        x = torch.where(changed, end, start)
        points.append(probabilities(x).gather(1, target.view(-1, 1)).squeeze(1).double().cpu())
    return torch.stack(points, dim=1).numpy()


def curve_areas(values: np.ndarray) -> np.ndarray:
    """Area under each row of ``[B, steps + 1]`` curves."""
    return np.array([auc(row) for row in np.asarray(values)])
