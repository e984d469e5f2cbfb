"""SMOE Scale saliency (Mundhenk et al., "Efficient Saliency Maps for Explainable AI").

Pure torch, no I/O. What a user calls::

    from geosal.saliency import SaliencyMaps, FastCAM

    result = SaliencyMaps(model)(images)      # images [B, C, H, W]
    result.combined                           # [B, H, W] in [0, 1]
    result.scales, result.normalized          # per-scale maps, finest first
    result.lovi()                             # [B, 3, H, W] LOVI rendering
    FastCAM(model)(images).fast_cam           # SMOE x Grad-CAM++ for the predicted classes

- :class:`SaliencyMaps`, :class:`SaliencyResult`, :class:`FastCAM`, :class:`FastCAMResult`;
- :func:`smoe_scale` (Eq. 2), :func:`find_scale_layers`, :func:`describe_scales`, :class:`ScaleHooks`.

One level down, by job: :mod:`~geosal.saliency.statistics` (every statistic of
Table 1, ``STATISTICS``, the fused kernels), :mod:`~geosal.saliency.normalize`
(normal / gamma CDF, min-max), :mod:`~geosal.saliency.combine` (Eq. 3, weights,
upsampling), :mod:`~geosal.saliency.lovi` (Eqs. 4-7), :mod:`~geosal.saliency.cam`
(Grad-CAM, Grad-CAM++), :mod:`~geosal.saliency.masks` (KAR / ROAR),
:mod:`~geosal.saliency.scales`, :mod:`~geosal.saliency.hooks`,
:mod:`~geosal.saliency.traced` (the compiled path) and
:mod:`~geosal.saliency.catalog` (statistic names, without torch).
Names are imported on first use, so ``import geosal.saliency.catalog`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geosal._lazy import lazy_exports

if TYPE_CHECKING:
    from geosal.saliency.cam import FastCAM, FastCAMResult
    from geosal.saliency.hooks import ScaleHooks
    from geosal.saliency.maps import SaliencyMaps, SaliencyResult
    from geosal.saliency.scales import ScaleInfo, describe_scales, find_scale_layers
    from geosal.saliency.statistics import smoe_scale

__all__ = [
    "FastCAM", "FastCAMResult", "SaliencyMaps", "SaliencyResult", "ScaleHooks", "ScaleInfo", "describe_scales",
    "find_scale_layers", "smoe_scale",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "FastCAM": "cam", "FastCAMResult": "cam", "SaliencyMaps": "maps", "SaliencyResult": "maps", "ScaleHooks": "hooks",
    "ScaleInfo": "scales", "describe_scales": "scales", "find_scale_layers": "scales", "smoe_scale": "statistics",
})
