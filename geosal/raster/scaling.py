"""Scene-wide intensity scaling of source values to uint8, from a bounded sample.

The scaling is derived once per scene, never per tile (stretching each tile on
its own makes seams between tiles), and from a bounded sample of the raster so
that planning costs the same for a 2,000 px tile and a 200,000 px mosaic:

- a raster of at most ``max_sample_pixels`` pixels is read whole (exact);
- a raster with overviews is read decimated, which GDAL serves from the
  overview closest to ``max_sample_pixels``;
- otherwise whole internal blocks (tiles or strips) are read on a regular
  lattice over the raster, as many as fit in ``max_sample_pixels``: the decoder
  touches only those blocks (a decimated read of a raster without overviews
  decodes every block of the file).

The sample gives the percentiles of non-uint8 data and, for every scene, the
band means that fill nodata and the halo beyond the scene's edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geosal.raster.errors import RasterInputError
from geosal.raster.source import SceneInfo

MAX_SAMPLE_PIXELS = 4_000_000
"""Default bound on the pixels read to derive a scene's scaling."""


@dataclass(frozen=True)
class BandScaling:
    """Linear map of each selected band from ``[low, high]`` (source units) to ``[0, 255]``.

    ``mean`` is the mean of the valid pixels per band, in source units;
    ``method`` is ``"identity"`` (uint8 data) or ``"percentile"``; ``sample``
    says which pixels the figures come from (``all``, ``overview``, ``blocks N/M``).
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    mean: tuple[float, ...]
    method: str
    sample: str = "all"

    @property
    def fill(self) -> tuple[int, ...]:
        """The band means as uint8 model input (0-255): what nodata pixels and the halo beyond the scene become."""
        means = np.asarray(self.mean, np.float64).reshape(-1, 1, 1)
        return tuple(int(v) for v in to_uint8(means, self).ravel())


def compute_scaling(
    dataset: DatasetReader,
    info: SceneInfo,
    low_percentile: float = 2.0,
    high_percentile: float = 98.0,
    max_sample_pixels: int = MAX_SAMPLE_PIXELS,
) -> BandScaling:
    """Scene-wide scaling of the bands ``info.bands`` of the open ``dataset``.

    Takes, per band, the ``low_percentile`` and ``high_percentile`` (0-100) and
    the mean of the valid pixels (GDAL's dataset mask; finite values for float
    data) of a sample of at most about ``max_sample_pixels`` pixels chosen as
    the module docstring says (``method="percentile"``); uint8 data keeps
    ``low=0``, ``high=255`` (``method="identity"``). Deterministic.

    Raises:
        RasterInputError: no sampled pixel is valid.
    """
    values, sample = _sample(dataset, info, max_sample_pixels)
    return _scaling_of(values, info, low_percentile, high_percentile, sample)


def compute_scaling_from(dataset: DatasetReader, info: SceneInfo, windows: list[Window], low_percentile: float = 2.0,
                         high_percentile: float = 98.0, sample: str = "") -> BandScaling:
    """:func:`compute_scaling` from the valid pixels of the given ``windows`` only (``sample`` describes them).

    Raises:
        RasterInputError: no pixel of the windows is valid.
    """
    bands = list(info.bands)
    values = [_valid_values(dataset, bands, window, None) for window in windows]
    empty = np.zeros((len(bands), 0), info.dtype)
    return _scaling_of(np.concatenate([empty, *values], axis=1), info, low_percentile, high_percentile, sample)


def _scaling_of(values: np.ndarray, info: SceneInfo, low_percentile: float, high_percentile: float, sample: str) -> BandScaling:
    """The scaling of the sampled valid pixels ``values`` ``[bands, n]``."""
    if values.shape[1] == 0 and sample in ("all", ""):
        raise RasterInputError(f"{info.path}: no valid pixels")
    if values.shape[1] == 0:
        raise RasterInputError(f"{info.path}: no valid pixels in the scaling sample ({sample}); a sparse scene needs "
                               "overviews (gdaladdo) for the sample to find its data")
    mean = tuple(float(m) for m in values.mean(axis=1, dtype=np.float64))
    if info.dtype == "uint8":
        n = len(info.bands)
        return BandScaling(low=(0.0,) * n, high=(255.0,) * n, mean=mean, method="identity", sample=sample)
    low, high = np.percentile(values, [low_percentile, high_percentile], axis=1)
    return BandScaling(low=tuple(float(v) for v in low), high=tuple(float(v) for v in high), mean=mean,
                       method="percentile", sample=sample)


def _sample(dataset: DatasetReader, info: SceneInfo, max_pixels: int) -> tuple[np.ndarray, str]:
    """The valid pixels of a bounded sample, ``[bands, n]`` in the source dtype, and how they were chosen."""
    bands = list(info.bands)
    if info.height * info.width <= max_pixels:
        return _valid_values(dataset, bands, None, None), "all"
    if info.overview_factors:
        factor = math.sqrt(info.height * info.width / max_pixels)
        shape = (max(1, int(info.height / factor)), max(1, int(info.width / factor)))
        return _valid_values(dataset, bands, None, shape), "overview"
    windows, total = sample_blocks(dataset, bands[0], max_pixels)
    values = [_valid_values(dataset, bands, window, None) for window in windows]
    return np.concatenate(values, axis=1), f"blocks {len(windows)}/{total}"


def sample_blocks(dataset: DatasetReader, band: int, max_pixels: int) -> tuple[list[Window], int]:
    """Whole internal blocks of ``band`` on a regular lattice over the raster, at most ``max_pixels`` pixels
    in all (at least one block); returns the windows and the raster's number of blocks."""
    block_height, block_width = dataset.block_shapes[band - 1]
    rows, cols = math.ceil(dataset.height / block_height), math.ceil(dataset.width / block_width)
    wanted = max(1, min(rows * cols, max_pixels // (block_height * block_width)))
    lattice_rows = max(1, min(rows, round(math.sqrt(wanted * rows / cols))))
    lattice_cols = max(1, min(cols, wanted // lattice_rows))
    windows = []
    for r in _spread(rows, lattice_rows):
        for c in _spread(cols, lattice_cols):
            window = Window(c * block_width, r * block_height, block_width, block_height)
            windows.append(window.intersection(Window(0, 0, dataset.width, dataset.height)))
    return windows, rows * cols


def _spread(count: int, chosen: int) -> list[int]:
    """``chosen`` of ``range(count)``, evenly spread, each at the centre of its share."""
    return sorted({min(count - 1, int((i + 0.5) * count / chosen)) for i in range(chosen)})


def _valid_values(dataset: DatasetReader, bands: list[int], window: Window | None,
                  shape: tuple[int, int] | None) -> np.ndarray:
    """``[bands, n]``: the valid pixels of ``window`` (None: the whole raster), read at ``shape`` (None: full)."""
    out_shape = None if shape is None else (len(bands), *shape)
    data = dataset.read(bands, window=window, out_shape=out_shape, resampling=Resampling.nearest)
    valid = dataset.dataset_mask(window=window, out_shape=shape, resampling=Resampling.nearest) > 0
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return data[:, valid]


def to_uint8(data: np.ndarray, scaling: BandScaling) -> np.ndarray:
    """Map ``[bands, h, w]`` source values to uint8 with ``scaling``.

    Each band goes linearly from ``low`` to 0 and ``high`` to 255, then is
    clipped to ``[0, 255]`` and rounded; NaN and any band with ``high <= low``
    map to 0. uint8 data with the identity scaling is returned unchanged.
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
