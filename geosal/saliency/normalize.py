"""Squash raw saliency maps into [0, 1].

The paper normalises each scale's map with the normal CDF of that map's own
mean and standard deviation (the gamma of Eq. 3). The scene pipeline instead
supplies scene-wide statistics, so that every tile of a scene is squashed the
same way and the stitched result has no seams.

All functions take ``maps`` of shape ``[B, H, W]`` (one map per image) and
return float32 of the same shape in [0, 1]. A constant map (zero spread) gives
0.5 everywhere, never NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CONSTANT_MAP_VALUE = 0.5
"""What every normaliser returns for a map with no spread."""

_TINY = 1e-12


def _per_map(maps: Tensor, value: Tensor | float | None, reduce) -> Tensor:
    """``value`` broadcast to ``[B, 1, 1]``; computed per map with ``reduce`` when None."""
    if value is None:
        return reduce(maps.flatten(1)).view(-1, 1, 1)
    value = torch.as_tensor(value, dtype=torch.float32, device=maps.device)
    return value.reshape(-1, 1, 1) if value.ndim else value


def _check(maps: Tensor) -> Tensor:
    if maps.ndim != 3:
        raise ValueError(f"expected maps of shape [B, H, W], got {tuple(maps.shape)}")
    return maps.float()


def normal_cdf(maps: Tensor, mean: Tensor | float | None = None, std: Tensor | float | None = None) -> Tensor:
    """Normal CDF squashing, ``Phi((s - mean) / std)`` (the gamma of Eq. 3).

    Args:
        maps: ``[B, H, W]`` raw saliency.
        mean: scalar or ``[B]``; ``None`` uses each map's own mean.
        std: scalar or ``[B]``, >= 0; ``None`` uses each map's own (population)
            standard deviation. Where it is 0 the result is 0.5.

    Returns:
        ``[B, H, W]`` float32 in [0, 1].
    """
    maps = _check(maps)
    mu = _per_map(maps, mean, lambda m: m.mean(1))
    sigma = _per_map(maps, std, lambda m: m.std(1, correction=0))
    z = (maps - mu) / (sigma * math.sqrt(2.0)).clamp_min(_TINY)
    out = 0.5 * (1.0 + torch.erf(z))
    return torch.where(sigma > 0, out, torch.full_like(out, CONSTANT_MAP_VALUE))


def gamma_cdf(maps: Tensor, mean: Tensor | float | None = None, std: Tensor | float | None = None) -> Tensor:
    """CDF of a Gamma distribution fitted by moments (shape ``k = mean^2 / var``,
    scale ``var / mean``), via the regularised lower incomplete gamma function.

    Monotone non-decreasing in ``s`` for every ``k`` (unlike a truncated series
    expansion, which turns back down for large values). Negative values count
    as 0.

    Args:
        maps: ``[B, H, W]`` raw saliency, >= 0.
        mean, std: as :func:`normal_cdf`; a map with zero mean or spread gives 0.5.

    Returns:
        ``[B, H, W]`` float32 in [0, 1].
    """
    maps = _check(maps)
    mu = _per_map(maps, mean, lambda m: m.mean(1))
    sigma = _per_map(maps, std, lambda m: m.std(1, correction=0))
    variance = (sigma * sigma).clamp_min(_TINY)
    shape = (mu * mu / variance).clamp_min(_TINY)
    scale = variance / mu.clamp_min(_TINY)
    out = torch.special.gammainc(shape.double(), (maps.clamp_min(0) / scale).double()).float()
    valid = (sigma > 0) & (mu > 0)
    return torch.where(valid, out, torch.full_like(out, CONSTANT_MAP_VALUE))


def min_max(maps: Tensor, minimum: Tensor | float | None = None, maximum: Tensor | float | None = None) -> Tensor:
    """Linear rescaling ``(s - min) / (max - min)``, clipped to [0, 1].

    Args:
        maps: ``[B, H, W]``.
        minimum, maximum: scalars or ``[B]``; ``None`` uses each map's own.

    Returns:
        ``[B, H, W]`` float32 in [0, 1]; 0.5 where ``max == min``.
    """
    maps = _check(maps)
    low = _per_map(maps, minimum, lambda m: m.amin(1))
    high = _per_map(maps, maximum, lambda m: m.amax(1))
    span = high - low
    out = ((maps - low) / span.clamp_min(_TINY)).clamp(0, 1)
    return torch.where(span > 0, out, torch.full_like(out, CONSTANT_MAP_VALUE))


NORMALIZERS = {"normal_cdf": normal_cdf, "gamma_cdf": gamma_cdf, "min_max": min_max}


def get_normalizer(name: str):
    """Look up a normaliser by name (``normal_cdf``, ``gamma_cdf``, ``min_max``).

    Raises:
        ValueError: unknown name.
    """
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown normalization {name!r}; choose one of: {', '.join(NORMALIZERS)}") from None
