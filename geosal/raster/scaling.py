"""Scene-wide intensity scaling of source values to uint8.

The scaling is derived once per scene from a decimated read of the whole
raster (GDAL uses overviews when present), never per tile: stretching each
tile on its own makes seams between tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling
from rasterio.io import DatasetReader

from geosal.raster.errors import RasterInputError
from geosal.raster.source import SceneInfo


@dataclass(frozen=True)
class BandScaling:
    """Linear map of each selected band from ``[low, high]`` (source units) to ``[0, 255]``.

    ``mean`` is the mean of the valid pixels per band, in source units;
    ``method`` is ``"identity"`` (uint8 data) or ``"percentile"``.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    mean: tuple[float, ...]
    method: str


def compute_scaling(
    dataset: DatasetReader,
    info: SceneInfo,
    low_percentile: float = 2.0,
    high_percentile: float = 98.0,
    max_sample_pixels: int = 4_000_000,
) -> BandScaling:
    """Scene-wide scaling of the bands ``info.bands`` of the open ``dataset``.

    Reads the whole raster decimated (nearest) to at most ``max_sample_pixels``
    pixels together with its dataset mask, and takes, per band, the
    ``low_percentile`` and ``high_percentile`` (0-100) of the valid pixels
    (``method="percentile"``). uint8 data keeps ``low=0``, ``high=255``
    (``method="identity"``). Raises :class:`RasterInputError` when no sampled
    pixel is valid.
    """
    height, width = _sample_shape(info.height, info.width, max_sample_pixels)
    out_shape = (len(info.bands), height, width)
    data = dataset.read(list(info.bands), out_shape=out_shape, resampling=Resampling.nearest)
    valid = dataset.dataset_mask(out_shape=(height, width), resampling=Resampling.nearest) > 0
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    if not valid.any():
        raise RasterInputError(f"{info.path}: no valid pixels")
    values = data[:, valid].astype(np.float64)
    mean = tuple(float(m) for m in values.mean(axis=1))
    if info.dtype == "uint8":
        n = len(info.bands)
        return BandScaling(low=(0.0,) * n, high=(255.0,) * n, mean=mean, method="identity")
    low, high = np.percentile(values, [low_percentile, high_percentile], axis=1)
    return BandScaling(
        low=tuple(float(v) for v in low), high=tuple(float(v) for v in high), mean=mean, method="percentile"
    )


def _sample_shape(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The largest decimation of ``height x width`` with at most ``max_pixels`` pixels, same aspect."""
    factor = max(1.0, math.sqrt(height * width / max_pixels))
    return max(1, int(height / factor)), max(1, int(width / factor))


def to_uint8(data: np.ndarray, scaling: BandScaling) -> np.ndarray:
    """Map ``[bands, h, w]`` source values to uint8 with ``scaling``.

    Each band goes linearly from ``low`` to 0 and ``high`` to 255, then is
    clipped to ``[0, 255]`` and rounded; NaN and any band with ``high <= low``
    map to 0.
    uint8 data with the identity scaling is returned unchanged.
    """
    if data.shape[0] != len(scaling.low):
        raise ValueError(f"data has {data.shape[0]} bands but the scaling has {len(scaling.low)}")
    if scaling.method == "identity" and data.dtype == np.uint8:
        return data
    low = np.asarray(scaling.low, np.float32)[:, None, None]
    span = np.asarray(scaling.high, np.float32)[:, None, None] - low
    gain = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0)
    scaled = (data.astype(np.float32) - low) * gain
    return np.rint(np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255)).astype(np.uint8)
