"""Reading a layer's pixels: from a Zarr array or a COG, decoded, at a power-of-two decimation.

Both sources answer the same question: the ``[bands, rows, cols]`` pixels of
the grid starting at ``(row, col)``, keeping every ``factor``-th pixel, at most
``size`` per side. A COG is read by GDAL from the overview that suits
``factor`` (nearest resampling; its overviews average the grid by 2, 4, ...),
a Zarr array from the chunks the pixels lie in (the top-left pixel of each
``factor x factor`` block), so a tile reads only what it shows. Values are decoded as xarray
and GDAL would: CF ``scale_factor`` / ``add_offset`` and the fill value of a
Zarr array, GDAL's band scale / offset and nodata of a COG; decoded values
are float32 with NaN for nodata. RGB(A) byte layers are returned as stored.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import rasterio
import zarr
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from geosal.viewer.grids import Grid


def decode(raw: np.ndarray, scale: float = 1.0, offset: float = 0.0, nodata: float | None = None) -> np.ndarray:
    """``raw * scale + offset`` as float32, NaN where ``raw`` equals ``nodata`` (or is NaN)."""
    values = raw.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        values[raw == nodata] = np.nan
    if scale != 1.0 or offset != 0.0:
        values = values * np.float32(scale) + np.float32(offset)
    return values


MAX_DECIMATED_BYTES = 256 * 2**20
"""A decimated Zarr read (factor > 1) decompresses at most about this many bytes of chunks ..."""
MAX_DECIMATED_CHUNKS = 4096
"""... and opens at most this many chunks; beyond either it samples more sparsely (see :meth:`ZarrSource.read`)."""


def _chunks_touched(start: int, stop: int, step: int, chunk: int) -> int:
    """How many chunks of side ``chunk`` the indices ``start:stop:step`` fall in."""
    return int(np.unique(np.arange(start, stop, step) // chunk).size)


class ZarrSource:
    """A 2-D ``[y, x]`` or 3-D ``[band, y, x]`` array of the store, on ``grid``.

    ``decoded`` sources (float arrays, or integer ones with a CF scale factor or
    offset) return float32 values with NaN for the fill value; the others return
    the stored integers.
    """

    origin = "zarr"

    def __init__(self, array: zarr.Array, grid: Grid, max_bytes: int = MAX_DECIMATED_BYTES,
                 max_chunks: int = MAX_DECIMATED_CHUNKS):
        if tuple(array.shape[-2:]) != (grid.height, grid.width):
            raise ValueError(f"{array.path}: shape {array.shape} does not match its grid {grid.height} x {grid.width}")
        self.array = array
        self.grid = grid
        self.bands = array.shape[0] if array.ndim == 3 else 1
        attrs = array.attrs
        self.scale = float(attrs.get("scale_factor", 1.0))
        self.offset = float(attrs.get("add_offset", 0.0))
        fill = attrs.get("_FillValue", attrs.get("missing_value", array.fill_value))
        self.nodata = None if fill is None else float(fill)
        self.decoded = np.issubdtype(array.dtype, np.floating) or "scale_factor" in attrs or "add_offset" in attrs
        self.max_bytes = max_bytes
        self.max_chunks = max_chunks

    def read(self, row: int, col: int, factor: int, size: int) -> np.ndarray:
        """``[bands, rows, cols]``: grid pixels ``row, row + factor, ...`` (at most ``size``, within the grid), same for columns.

        Zarr has no overviews: a decimated read decompresses every chunk its
        pixels fall in. When that would exceed ``max_bytes`` or ``max_chunks``
        (a coarse tile of a large scene still being computed), the pixels are
        taken ``2, 4, ...`` times more sparsely and each repeated to fill its
        place, so a coarse tile costs a bounded time; ``factor`` 1 always reads every pixel.
        """
        row_end, col_end = min(row + size * factor, self.grid.height), min(col + size * factor, self.grid.width)
        chunk_rows, chunk_cols = self.array.chunks[-2:]
        chunk_bytes = int(np.prod(self.array.chunks)) * self.array.dtype.itemsize
        step = factor
        while factor > 1 and step < max(self.grid.height, self.grid.width):
            chunks = _chunks_touched(row, row_end, step, chunk_rows) * _chunks_touched(col, col_end, step, chunk_cols)
            if chunks <= self.max_chunks and chunks * chunk_bytes <= self.max_bytes:
                break
            step *= 2
        raw = np.asarray(self.array[..., row:row_end:step, col:col_end:step])
        raw = raw.reshape(self.bands, *raw.shape[-2:])
        if step > factor:
            repeat = step // factor
            raw = np.repeat(np.repeat(raw, repeat, axis=-2), repeat, axis=-1)
            raw = raw[:, :-(-(row_end - row) // factor), :-(-(col_end - col) // factor)]
        return decode(raw, self.scale, self.offset, self.nodata) if self.decoded else raw

    def value(self, row: int, col: int) -> np.ndarray:
        """``[bands]``: the decoded value(s) of one pixel."""
        return self.read(row, col, 1, 1)[:, 0, 0]


_handles = threading.local()
_HANDLES_PER_THREAD = 32


def _dataset(path: str, stamp: tuple[int, int]) -> rasterio.io.DatasetReader:
    """This thread's open handle on ``path``.

    GDAL datasets must not be shared between threads; each thread keeps its
    own, the least recently used closed first. ``stamp`` (inode, mtime) makes a
    replaced file open afresh.
    """
    cache = getattr(_handles, "datasets", None)
    if cache is None:
        cache = _handles.datasets = OrderedDict()
    key = (path, stamp)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = rasterio.open(path)
    while len(cache) > _HANDLES_PER_THREAD:
        cache.popitem(last=False)[1].close()
    return cache[key]


class CogSource:
    """A (Cloud-Optimized) GeoTIFF: its grid from the file, its overviews for coarse reads.

    An RGB image (3 bands, or 4 with alpha: ``lovi.tif``, JPEG with an internal
    mask) is read as RGBA: its colours as stored and GDAL's mask of the dataset
    (alpha band, internal mask or nodata) as alpha, so ``bands`` is 4. Other
    files are decoded with GDAL's band scale, offset and mask (nodata -> NaN).
    """

    origin = "cog"

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(Path(path))
        status = os.stat(self.path)
        self.stamp = (status.st_ino, status.st_mtime_ns)
        dataset = _dataset(self.path, self.stamp)
        self.grid = Grid.from_gdal((dataset.height, dataset.width), tuple(dataset.transform)[:6])
        self.crs_wkt = dataset.crs.to_wkt() if dataset.crs else None
        colours = tuple(dataset.colorinterp[:3])
        self.rgba = dataset.count in (3, 4) and colours == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        self.bands = 4 if self.rgba else dataset.count
        floating = np.issubdtype(np.dtype(dataset.dtypes[0]), np.floating)
        scaled = any(s != 1.0 for s in dataset.scales) or any(o != 0.0 for o in dataset.offsets)
        self.decoded = not self.rgba and (floating or scaled)
        self.scales, self.offsets = dataset.scales, dataset.offsets

    def read(self, row: int, col: int, factor: int, size: int) -> np.ndarray:
        """``[bands, rows, cols]`` as :meth:`ZarrSource.read` gives them, read by GDAL with nearest
        resampling from the overview that suits ``factor`` (the stored pixels at ``factor`` 1)."""
        dataset = _dataset(self.path, self.stamp)
        height, width = min(size * factor, self.grid.height - row), min(size * factor, self.grid.width - col)
        shape = (dataset.count, -(-height // factor), -(-width // factor))
        window = Window(col, row, width, height)
        if self.rgba:
            colours = dataset.read((1, 2, 3), window=window, out_shape=(3, *shape[1:]), resampling=Resampling.nearest)
            alpha = dataset.dataset_mask(window=window, out_shape=shape[1:], resampling=Resampling.nearest)
            return np.concatenate([colours, alpha[None]])
        if not self.decoded:
            return dataset.read(window=window, out_shape=shape, resampling=Resampling.nearest)
        data = dataset.read(window=window, out_shape=shape, resampling=Resampling.nearest, masked=True)
        bands = [decode(np.ma.filled(band.astype(np.float32), np.nan), scale, offset)
                 for band, scale, offset in zip(data, self.scales, self.offsets)]
        return np.stack(bands)


def read_tile(source: ZarrSource | CogSource, row: int, col: int, factor: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size x size`` tile of ``source`` with its top-left grid pixel at ``(row, col)``.

    Returns ``(data, inside)``: ``data`` ``[bands, size, size]`` (float32 with
    NaN, or the stored integers with 0, where the tile extends past the grid)
    and ``inside`` bool ``[size, size]``, True over the grid.
    """
    part = source.read(row, col, factor, size)
    fill = np.nan if source.decoded else 0
    data = np.full((part.shape[0], size, size), fill, dtype=np.float32 if source.decoded else part.dtype)
    inside = np.zeros((size, size), dtype=bool)
    data[:, :part.shape[1], :part.shape[2]] = part
    inside[:part.shape[1], :part.shape[2]] = True
    return data, inside
