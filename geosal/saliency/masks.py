"""KAR / ROAR pixel masks (Section 2.4 of the paper, after Hooker et al.).

KAR keeps the top ``p`` fraction of the most salient pixels of each image;
ROAR removes them. Exactly ``round(p * H * W)`` pixels (halves rounded up) are
selected per image, and ties are broken deterministically: among equal
saliency values the pixel with the lower row-major index ranks higher. So
``kar_mask(s, p) == ~roar_mask(s, p)`` always.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def selected_count(fraction: float, pixels: int) -> int:
    """Pixels selected for ``fraction`` of ``pixels``: ``floor(fraction * pixels + 0.5)``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return min(pixels, math.floor(fraction * pixels + 0.5))


def top_fraction_mask(saliency: Tensor, fraction: float) -> Tensor:
    """Boolean mask of the ``fraction`` most salient pixels of each map.

    Args:
        saliency: ``[B, H, W]`` (any real dtype; NaN is not allowed).
        fraction: in [0, 1].

    Returns:
        ``[B, H, W]`` bool with exactly :func:`selected_count` ``True`` per map.
    """
    if saliency.ndim != 3:
        raise ValueError(f"expected saliency of shape [B, H, W], got {tuple(saliency.shape)}")
    batch, height, width = saliency.shape
    flat = saliency.reshape(batch, -1).float()
    count = selected_count(fraction, height * width)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :count]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, order, True)
    return mask.view(batch, height, width)


def kar_mask(saliency: Tensor, keep_fraction: float) -> Tensor:
    """Keep-And-Retrain mask: ``True`` on the ``keep_fraction`` most salient pixels.
    ``[B, H, W] -> [B, H, W]`` bool."""
    return top_fraction_mask(saliency, keep_fraction)


def roar_mask(saliency: Tensor, remove_fraction: float) -> Tensor:
    """Remove-And-Retrain mask: ``True`` on the pixels kept after removing the
    ``remove_fraction`` most salient ones. ``[B, H, W] -> [B, H, W]`` bool."""
    return ~top_fraction_mask(saliency, remove_fraction)


def apply_mask(images: Tensor, keep: Tensor, fill: Tensor | float = 0.0) -> Tensor:
    """Replace the pixels outside ``keep`` with ``fill``.

    Args:
        images: ``[B, C, H, W]``.
        keep: ``[B, H, W]`` bool, ``True`` where the image is kept.
        fill: scalar or per-channel ``[C]`` value (Hooker et al. use the dataset mean).

    Returns:
        A new ``[B, C, H, W]`` tensor of the images' dtype.
    """
    fill = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    if fill.ndim == 1:
        fill = fill.view(1, -1, 1, 1)
    return torch.where(keep.unsqueeze(1), images, fill)
