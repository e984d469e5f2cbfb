"""SMOE Scale saliency (Mundhenk et al., "Efficient Saliency Maps for Explainable AI").

Pure torch, no I/O. The main entry points:

- :class:`SaliencyMaps` — per-scale, normalised and combined maps of a batch;
- :class:`FastCAM` — the same plus Grad-CAM / Grad-CAM++ at the last scale;
- :func:`smoe_scale` and the other statistics, :func:`find_scale_layers`,
  :func:`normal_cdf`, :func:`combine`, :func:`lovi`, and the KAR / ROAR masks.
"""

from geosal.saliency.cam import FastCAM, FastCAMResult, grad_cam, grad_cam_plus_plus, normalize_cam
from geosal.saliency.combine import WEIGHT_PRESETS, combine, resolve_weights, upsample
from geosal.saliency.hooks import ScaleHooks
from geosal.saliency.lovi import hsv_to_rgb, lovi, lovi_hsv, lovi_uint8
from geosal.saliency.maps import SaliencyMaps, SaliencyResult
from geosal.saliency.masks import apply_mask, kar_mask, roar_mask, selected_count, top_fraction_mask
from geosal.saliency.normalize import gamma_cdf, get_normalizer, min_max, normal_cdf
from geosal.saliency.scales import ScaleInfo, describe_scales, find_scale_layers
from geosal.saliency.statistics import (
    STATISTICS,
    Statistic,
    gamma_scale_mle,
    get_statistic,
    smoe_scale,
    smoe_scale_eager,
    smoe_scale_fused,
)

__all__ = [
    "STATISTICS", "WEIGHT_PRESETS", "FastCAM", "FastCAMResult", "SaliencyMaps", "SaliencyResult",
    "ScaleHooks", "ScaleInfo", "Statistic", "apply_mask", "combine", "describe_scales",
    "find_scale_layers", "gamma_cdf", "gamma_scale_mle", "get_normalizer", "get_statistic",
    "grad_cam", "grad_cam_plus_plus", "hsv_to_rgb", "kar_mask", "lovi", "lovi_hsv", "lovi_uint8",
    "min_max", "normal_cdf", "normalize_cam", "resolve_weights", "roar_mask", "selected_count",
    "smoe_scale", "smoe_scale_eager", "smoe_scale_fused", "top_fraction_mask", "upsample",
]
