"""Layer Ordered Visualisation of Information (LOVI, Eqs. 4-7).

A stack of ``r`` normalised maps becomes one HSV image: hue is the layer
centre of mass (violet, 300 degrees, for the first layer to red, 0 degrees,
for the last), saturation is how unique the strongest layer is, value is the
strongest activation.

Eq. 6 as printed, ``1 - (sum s - nu) / (r max s (1 - nu))``, does not give the
properties the paper states for it (one active layer -> saturation 1; all
layers equal -> 0): for ``s = (1, 0, 0, 0, 0)`` it gives 0.8 and for equal
maps it goes negative. We implement the reading that does,
``1 - (sum s / (r max s) - nu) / (1 - nu)``, which is the printed formula with
its parenthesis moved.
"""

from __future__ import annotations

import torch
from torch import Tensor

HUE_RANGE_DEGREES = 300.0


def lovi_hsv(maps: Tensor) -> Tensor:
    """Hue, saturation and value of each pixel.

    Args:
        maps: ``[B, K, H, W]`` with values in [0, 1], first layer first, K >= 1.

    Returns:
        ``[B, 3, H, W]`` float32: hue in degrees [0, 300], saturation and value
        in [0, 1]. Pixels where every map is 0 get (0, 0, 0).
    """
    if maps.ndim != 4:
        raise ValueError(f"expected maps of shape [B, K, H, W], got {tuple(maps.shape)}")
    s = maps.float().clamp(0, 1)
    r = s.shape[1]
    total = s.sum(1)
    peak = s.amax(1)
    active = peak > 0
    if r == 1:
        phi = torch.ones(1, device=s.device)
    else:
        phi = 1 - torch.arange(r, device=s.device, dtype=torch.float32) / (r - 1)  # Eq. 4, phi(k) = 1 - (k-1)/(r-1)
    hue = (s * phi.view(1, r, 1, 1)).sum(1) / total.clamp_min(1e-12) * HUE_RANGE_DEGREES  # Eq. 5
    nu = 1.0 / r
    if r == 1:
        saturation = torch.ones_like(peak)
    else:
        saturation = 1 - (total / (r * peak).clamp_min(1e-12) - nu) / (1 - nu)  # Eq. 6 (see module docstring)
    zero = torch.zeros_like(peak)
    hue = torch.where(active, hue, zero)
    saturation = torch.where(active, saturation.clamp(0, 1), zero)
    return torch.stack([hue, saturation, peak], dim=1)  # Eq. 7: value = max


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Standard HSV to RGB conversion.

    Args:
        hsv: ``[B, 3, H, W]``: hue in degrees (any real, taken modulo 360),
            saturation and value in [0, 1].

    Returns:
        ``[B, 3, H, W]`` float32 RGB in [0, 1].
    """
    h, s, v = hsv[:, 0] / 60.0, hsv[:, 1], hsv[:, 2]

    def channel(n: float) -> Tensor:
        k = torch.remainder(n + h, 6.0)
        return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)

    return torch.stack([channel(5.0), channel(3.0), channel(1.0)], dim=1)


def lovi(maps: Tensor) -> Tensor:
    """LOVI rendering of a stack of normalised maps.

    Args:
        maps: ``[B, K, H, W]`` in [0, 1], all at the same size (upsample first), finest layer first.

    Returns:
        ``[B, 3, H, W]`` float32 RGB in [0, 1]; black where every map is 0.
    """
    return hsv_to_rgb(lovi_hsv(maps))


def lovi_uint8(maps: Tensor) -> Tensor:
    """:func:`lovi` scaled to ``uint8`` [0, 255] (rounded): ``[B, K, H, W] -> [B, 3, H, W]``."""
    return (lovi(maps) * 255).round_().to(torch.uint8)
