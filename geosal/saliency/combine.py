"""Combine per-scale saliency maps into one (Eq. 3 of the paper).

Each normalised map is upsampled bilinearly (``align_corners=False``) to the
output size and the maps are averaged with weights:
``c = sum_k w_k * up(gamma_k) / sum_k w_k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

WEIGHT_PRESETS: dict[str, Sequence[float] | None] = {
    "equal": None,  # [1, 1, ..., 1]
    "linear": None,  # [1, 2, ..., n]
    "prior": (0.18, 0.15, 0.37, 0.40, 0.72),
}
"""Named weightings of Section 3.2: ``equal`` and ``linear`` adapt to the
number of scales; ``prior`` holds the paper's five ResNet-50 weights."""


def resolve_weights(weights: str | Sequence[float], count: int) -> list[float]:
    """Concrete weights for ``count`` maps.

    Args:
        weights: ``"equal"`` ([1] * n), ``"linear"`` ([1, ..., n]), ``"prior"``
            ([0.18, 0.15, 0.37, 0.40, 0.72], only for 5 maps) or a list of
            ``count`` non-negative numbers with a positive sum.

    Raises:
        ValueError: unknown preset, wrong length, negative weights or a zero sum.
    """
    if isinstance(weights, str):
        if weights == "equal":
            return [1.0] * count
        if weights == "linear":
            return [float(k) for k in range(1, count + 1)]
        if weights == "prior":
            prior = list(WEIGHT_PRESETS["prior"])
            if count != len(prior):
                raise ValueError(f"the 'prior' weights are for 5 scales; this model has {count}: pass explicit weights")
            return prior
        raise ValueError(f"unknown weights preset {weights!r}; choose equal, linear, prior or give a list")
    values = [float(w) for w in weights]
    if len(values) != count:
        raise ValueError(f"got {len(values)} weights for {count} saliency maps")
    if any(w < 0 for w in values) or sum(values) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {values}")
    return values


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upsampling with ``align_corners=False``: ``[B, h, w] -> [B, H, W]`` float32."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.float()
    return F.interpolate(maps.float().unsqueeze(1), size=tuple(size), mode="bilinear", align_corners=False).squeeze(1)


def combine(maps: Sequence[Tensor], size: tuple[int, int], weights: str | Sequence[float] = "equal") -> Tensor:
    """Weighted mean of upsampled normalised maps (Eq. 3).

    Args:
        maps: one ``[B, h_k, w_k]`` normalised map per scale (values in [0, 1]).
        size: output ``(H, W)`` in pixels.
        weights: preset name or explicit list, see :func:`resolve_weights`.

    Returns:
        ``[B, H, W]`` float32 in [0, 1]. One upsampled map exists at a time, so
        the extra memory is one ``[B, H, W]`` buffer besides the result.
    """
    if not maps:
        raise ValueError("combine() needs at least one map")
    w = resolve_weights(weights, len(maps))
    total = sum(w)
    out = torch.zeros(maps[0].shape[0], *size, dtype=torch.float32, device=maps[0].device)
    for weight, m in zip(w, maps):
        if weight:
            out.add_(upsample(m, size), alpha=weight / total)
    return out.clamp_(0.0, 1.0)
