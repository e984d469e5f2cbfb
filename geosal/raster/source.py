"""The source scene: what it is (:func:`inspect_scene`), the grid we work on
(:func:`working_grid`) and windowed reads on that grid (:func:`read_window`).

A scene must be a north-up raster with an affine geotransform and a CRS. Its
validity mask is GDAL's dataset mask, which already combines a nodata value, an
internal mask and an alpha band; an alpha band is never a data band.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from geosal.raster.errors import RasterInputError
from geosal.raster.objects import gdal_path, is_url, public_url, source_identity

SUPPORTED_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")
MAX_BLOCK_BYTES = 2**30
"""Largest internal block (every band, decoded) a source may have."""

# WGS 84 ellipsoid, for converting degrees to metres at a latitude.
_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3


@dataclass(frozen=True)
class SceneInfo:
    """What the pipeline needs to know about a source scene.

    ``transform`` holds the six affine coefficients ``(a, b, c, d, e, f)`` (affine order, not GDAL's)
    mapping pixel (col, row) to CRS coordinates; ``bands`` are the 1-based indexes
    of the selected data bands; ``gsd_m`` is the pixel size in metres along x and
    y (for a geographic CRS, at the scene centre latitude); ``block_shape`` is the
    (rows, cols) internal block of the first band; ``overview_factors`` are the
    decimation factors of its overviews.
    """

    path: str
    width: int
    height: int
    band_count: int
    bands: tuple[int, ...]
    dtype: str
    crs_wkt: str | None
    transform: tuple[float, ...]
    nodata: float | None
    mask_source: str
    is_geographic: bool
    gsd_m: tuple[float, float]
    block_shape: tuple[int, int]
    overview_factors: tuple[int, ...]

    @property
    def affine(self) -> Affine:
        """The geotransform as an :class:`affine.Affine`."""
        return Affine(*self.transform)

    @property
    def crs(self) -> CRS | None:
        """The CRS as a :class:`rasterio.crs.CRS`, or None when the scene has none."""
        return CRS.from_wkt(self.crs_wkt) if self.crs_wkt else None

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return self.height, self.width


def inspect_scene(
    path: str | os.PathLike[str],
    bands: tuple[int, ...] | list[int] | None = None,
    allow_missing_georeference: bool = False,
) -> SceneInfo:
    """Open ``path``, check it can be processed and describe it.

    ``bands`` are 1-based band indexes; None selects every band except an alpha
    band. Raises :class:`RasterInputError` (one line naming the file) when the
    file is missing (for a URL, ``https://`` or ``s3://``: missing or refused,
    HTTP 404 or 403); is not a raster GDAL can read (GDAL itself refuses
    zero-size rasters); has truncated pixel data; has no bands (a container of
    subdatasets); lacks a geotransform or a CRS (unless
    ``allow_missing_georeference``); is georeferenced only by GCPs or by a
    rotated geotransform; has a data type outside :data:`SUPPORTED_DTYPES`;
    has internal blocks larger than :data:`MAX_BLOCK_BYTES`; or when a
    requested band is out of range or is the alpha band.
    """
    name = os.fspath(path)
    if _is_local(name) and not os.path.exists(name):
        raise RasterInputError(f"{name}: no such file")
    if is_url(name):
        source_identity(name)  # a missing object, a refused request: one line naming the URL, before GDAL guesses
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(gdal_path(name))
    except RasterioIOError as exc:
        detail = f" ({(str(exc).strip().splitlines() or [''])[0]})" if is_url(name) else ""
        raise RasterInputError(f"{public_url(name)}: not a raster GDAL can read{detail}") from exc
    with dataset:
        return _describe(dataset, name, bands, allow_missing_georeference)


def _is_local(name: str) -> bool:
    return not name.startswith("/vsi") and "://" not in name


def _describe(
    dataset: DatasetReader, name: str, bands: tuple[int, ...] | list[int] | None, allow_missing: bool
) -> SceneInfo:
    if dataset.count == 0:
        hint = f" (it holds subdatasets, e.g. {dataset.subdatasets[0]})" if dataset.subdatasets else ""
        raise RasterInputError(f"{name}: no raster bands{hint}")
    selected = _select_bands(dataset, name, bands)
    dtype = _data_type(dataset, name, selected)
    transform = dataset.transform
    if transform.is_identity and not allow_missing:
        if dataset.gcps[0]:
            raise RasterInputError(
                f"{name}: georeferenced by ground control points only; warp it to a grid first (gdalwarp)"
            )
        raise RasterInputError(f"{name}: no geotransform (the raster is not georeferenced)")
    if transform.b != 0 or transform.d != 0:
        raise RasterInputError(f"{name}: rotated geotransform is not supported; warp it north-up first (gdalwarp)")
    if dataset.crs is None and not allow_missing:
        raise RasterInputError(f"{name}: no coordinate reference system (CRS)")
    _check_block_size(dataset, name, selected[0])
    _probe_pixels(dataset, name, selected[0])
    crs = dataset.crs
    return SceneInfo(
        path=name,
        width=dataset.width,
        height=dataset.height,
        band_count=dataset.count,
        bands=selected,
        dtype=dtype,
        crs_wkt=crs.to_wkt() if crs else None,
        transform=tuple(transform[:6]),
        nodata=dataset.nodatavals[selected[0] - 1],
        mask_source=_mask_source(dataset.mask_flag_enums[selected[0] - 1]),
        is_geographic=bool(crs and crs.is_geographic),
        gsd_m=_ground_sample_distance(name, crs, transform, dataset.height),
        block_shape=tuple(dataset.block_shapes[selected[0] - 1]),
        overview_factors=tuple(dataset.overviews(selected[0])),
    )


def _select_bands(
    dataset: DatasetReader, name: str, bands: tuple[int, ...] | list[int] | None
) -> tuple[int, ...]:
    alpha = {i + 1 for i, interp in enumerate(dataset.colorinterp) if interp == ColorInterp.alpha}
    if bands is None:
        selected = tuple(i for i in range(1, dataset.count + 1) if i not in alpha)
        if not selected:
            raise RasterInputError(f"{name}: the raster has only an alpha band, no data band")
        return selected
    if len(bands) == 0:
        raise RasterInputError(f"{name}: no band selected")
    for band in bands:
        if not 1 <= band <= dataset.count:
            raise RasterInputError(f"{name}: band {band} is out of range (the raster has {dataset.count} bands)")
        if band in alpha:
            raise RasterInputError(f"{name}: band {band} is the alpha band, not a data band")
    return tuple(int(b) for b in bands)


def _data_type(dataset: DatasetReader, name: str, selected: tuple[int, ...]) -> str:
    dtypes = sorted({dataset.dtypes[b - 1] for b in selected})
    if len(dtypes) > 1:
        raise RasterInputError(f"{name}: the selected bands mix data types {', '.join(dtypes)}")
    if dtypes[0] not in SUPPORTED_DTYPES:
        raise RasterInputError(
            f"{name}: data type {dtypes[0]} is not supported (use one of {', '.join(SUPPORTED_DTYPES)})"
        )
    return dtypes[0]


def _check_block_size(dataset: DatasetReader, name: str, band: int) -> None:
    """Refuse internal blocks (tiles or strips) above :data:`MAX_BLOCK_BYTES`: GDAL decodes a whole block for
    any pixel of it, so a file made of such blocks cannot be read in bounded memory."""
    height, width = dataset.block_shapes[band - 1]
    size = height * width * dataset.count * np.dtype(dataset.dtypes[band - 1]).itemsize
    if size > MAX_BLOCK_BYTES:
        raise RasterInputError(f"{name}: internal blocks of {width:,} x {height:,} px ({size / 2**30:,.1f} GiB each, decoded "
                               "whole for any pixel of them) are too large to read; retile the file first "
                               "(gdal_translate -co TILED=YES -co COMPRESS=DEFLATE)")


def _probe_pixels(dataset: DatasetReader, name: str, band: int) -> None:
    """Read the last pixel: a truncated file often opens but fails there."""
    try:
        dataset.read(band, window=Window(dataset.width - 1, dataset.height - 1, 1, 1))
    except RasterioIOError as exc:
        raise RasterInputError(f"{name}: pixel data is truncated or corrupt") from exc


def _mask_source(flags: list[MaskFlags]) -> str:
    if MaskFlags.alpha in flags:
        return "alpha"
    if MaskFlags.nodata in flags:
        return "nodata"
    if MaskFlags.all_valid in flags:
        return "none"
    return "internal_mask"


def _ground_sample_distance(name: str, crs: CRS | None, transform: Affine, height: int) -> tuple[float, float]:
    size_x, size_y = abs(transform.a), abs(transform.e)
    if crs is None:
        return size_x, size_y
    if crs.is_geographic:
        radians_per_unit = crs.units_factor[1]
        latitude = (transform @ (0, height / 2))[1] * radians_per_unit
        w = 1 - _WGS84_E2 * math.sin(latitude) ** 2
        prime_vertical = _WGS84_A / math.sqrt(w)
        meridional = _WGS84_A * (1 - _WGS84_E2) / w**1.5
        return (
            size_x * radians_per_unit * prime_vertical * math.cos(latitude),
            size_y * radians_per_unit * meridional,
        )
    try:
        metres_per_unit = crs.linear_units_factor[1]
    except CRSError as exc:
        raise RasterInputError(f"{name}: the CRS has no linear unit") from exc
    return size_x * metres_per_unit, size_y * metres_per_unit


@dataclass(frozen=True)
class WorkingGrid:
    """The pixel grid the pipeline works on: the source grid, optionally resampled.

    ``scale_x`` and ``scale_y`` are source pixels per working pixel (> 0; 1.0 is
    native). The working grid always covers exactly the extent of the source.
    """

    width: int
    height: int
    scale_x: float
    scale_y: float

    @property
    def is_native(self) -> bool:
        """True when the working grid is the source grid itself."""
        return self.scale_x == 1.0 and self.scale_y == 1.0

    def transform(self, info: SceneInfo) -> Affine:
        """The working grid's transform: ``info.affine @ Affine.scale(scale_x, scale_y)``."""
        return info.affine @ Affine.scale(self.scale_x, self.scale_y)


def working_grid(info: SceneInfo, target_gsd_m: float | None = None) -> WorkingGrid:
    """The working grid for ``info`` at ``target_gsd_m`` metres per pixel (None: native).

    Width is ``max(1, round(info.width * gsd_x / target_gsd_m))``, likewise the
    height, and the scales are ``info.width / width`` and ``info.height / height``.
    """
    if target_gsd_m is None:
        return WorkingGrid(info.width, info.height, 1.0, 1.0)
    if not target_gsd_m > 0:
        raise RasterInputError(f"{info.path}: target ground sample distance must be > 0 m, got {target_gsd_m}")
    width = max(1, round(info.width * info.gsd_m[0] / target_gsd_m))
    height = max(1, round(info.height * info.gsd_m[1] / target_gsd_m))
    return WorkingGrid(width, height, info.width / width, info.height / height)


MAX_READ_BYTES = 4 * 2**20
"""Source pixels a resampled :func:`read_window` holds at once (it reads in bands of rows)."""


def read_window(
    dataset: DatasetReader,
    info: SceneInfo,
    grid: WorkingGrid,
    row_off: int,
    col_off: int,
    height: int,
    width: int,
    resampling: str = "average",
    max_read_bytes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of the working grid, padded where it leaves the raster.

    The window (in working-grid pixels) may extend past any edge of the raster.
    Only the in-bounds part is read (resampled with ``resampling`` when the grid
    is not native; the validity mask always with nearest) and the rest is filled
    by repeating the edge pixels. A resampled read is done in bands of working
    rows whose source pixels take at most ``max_read_bytes`` (GDAL reads the
    source at full resolution before it resamples: a 1,152 px window of a 10 cm
    scene resampled to 0.4 m is 64 MB of source pixels at once otherwise); the
    result is identical, since each band starts on a working-pixel boundary.

    Returns ``data``, ``[len(info.bands), height, width]`` in ``info.dtype``, and
    ``valid``, bool ``[height, width]``: True inside the raster where GDAL's
    dataset mask says the pixel is valid (and, for float data, the selected
    bands are finite). A window wholly outside the raster gives zeros and an
    all-False ``valid``. ``dataset`` is an open dataset of ``info.path``.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"window size must be positive, got {height} x {width}")
    r0, r1 = max(row_off, 0), min(row_off + height, grid.height)
    c0, c1 = max(col_off, 0), min(col_off + width, grid.width)
    if r1 <= r0 or c1 <= c0:
        return np.zeros((len(info.bands), height, width), info.dtype), np.zeros((height, width), bool)
    left, right = _source_span(c0, c1, grid.width, info.width)
    source_row_bytes = (right - left) * (info.height / grid.height) * len(info.bands) * np.dtype(info.dtype).itemsize
    limit = MAX_READ_BYTES if max_read_bytes is None else max_read_bytes
    band_rows = r1 - r0 if grid.is_native else max(1, int(limit // max(source_row_bytes, 1)))
    data = np.empty((len(info.bands), r1 - r0, c1 - c0), info.dtype)
    valid = np.empty((r1 - r0, c1 - c0), bool)
    for start in range(r0, r1, band_rows):
        stop = min(start + band_rows, r1)
        top, bottom = _source_span(start, stop, grid.height, info.height)
        source_window = Window(left, top, right - left, bottom - top)
        rows = slice(start - r0, stop - r0)
        data[:, rows] = dataset.read(list(info.bands), window=source_window, out_shape=(len(info.bands), stop - start, c1 - c0),
                                     resampling=Resampling[resampling])
        valid[rows] = dataset.dataset_mask(window=source_window, out_shape=(stop - start, c1 - c0),
                                           resampling=Resampling.nearest) > 0
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    pad = ((r0 - row_off, row_off + height - r1), (c0 - col_off, col_off + width - c1))
    return np.pad(data, ((0, 0), *pad), mode="edge"), np.pad(valid, pad, constant_values=False)


def source_window_of(info: SceneInfo, grid: WorkingGrid, row_off: int, col_off: int, height: int, width: int) -> Window | None:
    """The source pixels (a fractional window) under the in-bounds part of a working-grid window, or None when the
    window lies wholly outside the raster."""
    r0, r1 = max(row_off, 0), min(row_off + height, grid.height)
    c0, c1 = max(col_off, 0), min(col_off + width, grid.width)
    if r1 <= r0 or c1 <= c0:
        return None
    top, bottom = _source_span(r0, r1, grid.height, info.height)
    left, right = _source_span(c0, c1, grid.width, info.width)
    return Window(left, top, right - left, bottom - top)


def _source_span(start: int, stop: int, n_working: int, n_source: int) -> tuple[float, float]:
    """Source pixel span of working pixels ``[start, stop)``; exact at the raster edges."""
    return start * n_source / n_working, stop * n_source / n_working
