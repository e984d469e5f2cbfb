"""GDAL's block cache, sized to what the reads need so that memory does not grow with the scene.

GDAL keeps decoded raster blocks in one process-wide cache whose default size
is 5 % of the machine's RAM. geosal reads each source pixel about once (pass 1
reads every block window once, in bands of rows), so a large cache buys nothing
and, on a big scene, fills up with blocks that are never read again: peak
memory then grows with the scene instead of staying flat. What the reads do
need (:func:`window_cache_bytes`) depends on the source's layout: with tiles,
the source blocks under one band of a window; with strips that span the whole
raster, a window's row of strips, or every block of a row of windows would
decode the same strips again.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from rasterio.env import get_gdal_config, set_gdal_config

DEFAULT_GDAL_CACHE_MB = 256
READERS = 1
"""Windows read at once in one process that the cache is sized for (one reads while another computes)."""

_lock = threading.Lock()
_granted = 0


def window_cache_bytes(source_shape: tuple[int, int], block_shape: tuple[int, int], window: tuple[float, float],
                       band_rows: float, bytes_per_pixel: int) -> int:
    """Bytes of decoded source blocks that :data:`READERS` concurrent windowed reads keep using.

    Args:
        source_shape: ``(rows, cols)`` of the source raster.
        block_shape: ``(rows, cols)`` of its internal blocks.
        window: ``(rows, cols)`` of one window, in source pixels.
        band_rows: source rows read at once (a window is read in bands of rows).
        bytes_per_pixel: all selected bands of one pixel.
    """
    block_rows, block_cols = block_shape
    striped = block_cols >= source_shape[1]
    if striped:  # every block of a row of windows decodes the same strips: keep a window's height of them
        rows, cols = window[0] + block_rows, source_shape[1]
    else:  # one band of the window, rounded out to whole blocks, and the block row it shares with the next band
        rows = (math.ceil(band_rows / block_rows) + 2) * block_rows
        cols = (math.ceil(window[1] / block_cols) + 1) * block_cols
    return int(READERS * rows * cols * bytes_per_pixel)


def bound_gdal_cache(megabytes: int = DEFAULT_GDAL_CACHE_MB, needed_bytes: int | None = None) -> None:
    """Set GDAL's block cache of this process to what the reads need (``needed_bytes``, the largest asked for
    so far in this process, at least 16 MiB) but never more than ``megabytes`` MiB (> 0).

    Idempotent and cheap; call it before reading or writing rasters in any
    process that runs pipeline work (the client and every Dask worker).
    """
    global _granted
    if megabytes <= 0:
        raise ValueError(f"the GDAL cache needs a positive size in MiB, got {megabytes}")
    with _lock:
        if needed_bytes is not None:
            _granted = max(_granted, needed_bytes, 16 * 2**20)
        limit = min(int(megabytes) * 2**20, _granted or int(megabytes) * 2**20)
        if get_gdal_config("GDAL_CACHEMAX") != limit:
            set_gdal_config("GDAL_CACHEMAX", limit)


def bytes_per_pixel(dtype: str, bands: int) -> int:
    """Bytes of one pixel of ``bands`` samples of ``dtype``."""
    return np.dtype(dtype).itemsize * bands
