"""The Zarr output store of one scene (``saliency.zarr``).

The arrays are described by :class:`ArraySpec` (the pipeline declares a
scene's in :mod:`geosal.pipeline.layout`); their names are the constants below.
Every array carries xarray's ``_ARRAY_DIMENSIONS``. A scene's store holds::

    combined       (y, x)              the combined map on the output grid, uint16 codes with CF
                                       scale_factor / _FillValue (decoded to [0, 1] and NaN by readers)
    fast_cam       (y, x)              likewise, with Fast-CAM (optional)
    valid          (y_working, x_working)  uint8, 1 where the source pixel is valid data
    scale_k        (y_scale_k, x_scale_k)  float32 raw statistic, NaN = not written / nodata
    cam            (y_cam, x_cam)      float32 raw Grad-CAM (optional)
    preview        (preview_band, y_preview, x_preview)  uint8: the model's input, block-averaged
    x, y, x_<grid>, y_<grid>           coordinates of each grid (pixel centres, CRS units)
    spatial_ref, spatial_ref_<grid>    CF grid-mapping variables (crs_wkt, spatial_ref, GeoTransform,
                                       CF parameters)
    pass1_done     (block,)            uint8, 1 = block written, chunk 1
    pass1_stats    (block, scale, stat) float64: count, sum, sum of squares

Each grid has its own coordinates and grid mapping, named in the data array's
``grid_mapping`` and ``coordinates`` attributes, so xarray + rioxarray give
every array its own CRS and transform, and so does GDAL's Zarr driver
(``ZARR:"saliency.zarr":/combined``): GDAL derives the geotransform from the
regularly spaced 1-D coordinate arrays named by ``_ARRAY_DIMENSIONS`` (so a
data array whose ``_ARRAY_DIMENSIONS`` is lost reads with an identity
transform) and the CRS from the CF ``grid_mapping`` variable (GDAL >= 3.9) or
from GDAL's own ``_CRS`` attribute, which every data array also carries for
GDAL 3.4 to 3.8. (``_CRS`` is a dict attribute: drop it before writing an
array to netCDF.)

Format, as tested with the GDAL 3.10.3 bundled with rasterio 1.4 and
zarr-python 3.1: Zarr v3 as zarr-python writes it cannot be opened by that GDAL
at all (``Unsupported codec: bytes``, whatever the compressor), while Zarr v2
reads with zlib, zstd and blosc compressors alike. The store is therefore Zarr
v2 with the Zstd compressor (libzstd is part of practically every GDAL build;
blosc is an optional GDAL dependency) and consolidated metadata, which both
xarray and GDAL use; integer code arrays add numcodecs' Delta filter, which
GDAL's Zarr driver reads too. GDAL reports the scale arrays with nodata NaN,
and ``combined`` with its scale and nodata code.

A store may be a local folder or an ``s3://`` URL (through zarr's fsspec store,
:func:`~geosal.raster.objects.zarr_store`): each chunk is then one object, and a
failure of the object store is a one-line
:class:`~geosal.raster.errors.StorageError`.

Writers must write whole chunks (:func:`write_region` checks it) so that
concurrent writers never share a chunk; metadata is written once by
:func:`create_store` and changed only by :func:`update_attrs`, which one
process calls.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numcodecs
import numpy as np
import pyproj
import zarr
from affine import Affine

from geosal.raster.objects import exists, is_object_url, translated, zarr_store

T = TypeVar("T")

ZARR_FORMAT = 2
COMPRESSOR = numcodecs.Zstd(level=1)
"""zstd level 1: as small as levels 3 and 9 on these maps (measured by workflows/bench_output_size.py), and the fastest."""

COMBINED = "combined"
"""The combined map (Eq. 3)."""
LOVI = "lovi"
"""The LOVI rendering (Eqs. 4-7), RGBA."""
FAST_CAM = "fast_cam"
"""Fast-CAM: the combined map times the class map (optional)."""
VALID = "valid"
"""Where the source pixel is valid data."""
PREVIEW = "preview"
"""The model's input, block-averaged, for quicklooks."""
CAM = "cam"
"""The raw Grad-CAM map at the last scale (optional, with Fast-CAM)."""
DONE = "pass1_done"
"""Pass-1 bookkeeping: block done flags."""
STATS = "pass1_stats"
"""Pass-1 bookkeeping: each block's valid-pixel statistics per raw map."""

LOVI_BANDS = ("red", "green", "blue", "alpha")
_STAT_NAMES = ("count", "sum", "sum_of_squares")
_RESERVED_NAMES = {DONE, STATS, "band", "preview_band", "x", "y", "spatial_ref"}


def scale_array(index: int) -> str:
    """Name of the raw map of scale ``index`` (1 = finest): ``scale_1``, ``scale_2``, ..."""
    return f"scale_{index}"


@dataclass(frozen=True)
class GridSpec:
    """A north-up pixel grid of the store.

    ``transform`` holds the six affine coefficients ``(a, b, c, d, e, f)`` of the grid (affine order);
    ``chunk`` is the side of the square Zarr chunks of its arrays.
    """

    name: str
    height: int
    width: int
    transform: tuple[float, ...]
    chunk: int

    @property
    def affine(self) -> Affine:
        """The grid's transform as an :class:`affine.Affine`."""
        return Affine(*self.transform[:6])

    def downsampled(self, stride: int, name: str, chunk: int) -> GridSpec:
        """The grid of a map with output stride ``stride`` on this grid.

        Shape ``(ceil(height / stride), ceil(width / stride))``, transform this
        transform times ``Affine.scale(stride)``: each output pixel covers the
        same ground as the ``stride x stride`` pixels below it.
        """
        return GridSpec(
            name=name,
            height=math.ceil(self.height / stride),
            width=math.ceil(self.width / stride),
            transform=tuple((self.affine @ Affine.scale(stride))[:6]),
            chunk=chunk,
        )


@dataclass(frozen=True)
class ArraySpec:
    """One data array of the store.

    Attributes:
        name: array name (:data:`COMBINED`, :func:`scale_array` ``(k)``, ...).
        grid: its pixel grid; chunks are ``grid.chunk`` pixels square.
        dtype: numpy dtype name.
        fill_value: the nodata value (NaN for float maps), or None for arrays without nodata.
        bands: names of a leading band dimension (empty for a 2-D array).
        band_dim: name of that dimension (its coordinate holds 1, 2, ...).
        delta: store differences between neighbours (numcodecs ``Delta``, which GDAL's Zarr
            driver reads too): smooth integer maps compress much better.
        attrs: further attributes (``long_name``, ``units``, CF ``scale_factor``, ...).
    """

    name: str
    grid: GridSpec
    dtype: str
    fill_value: float | None
    bands: tuple[str, ...] = ()
    band_dim: str = "band"
    delta: bool = False
    attrs: tuple[tuple[str, Any], ...] = ()


def grid_dims(grid: GridSpec) -> tuple[str, str, str]:
    """``(y, x, grid_mapping)`` names of a grid's coordinates: ``y``, ``x``, ``spatial_ref`` for the
    store's main grid (named ``""``), else suffixed with the grid's name (``y_scale_1``, ...)."""
    suffix = f"_{grid.name}" if grid.name else ""
    return f"y{suffix}", f"x{suffix}", f"spatial_ref{suffix}"


def create_store(
    path: str | os.PathLike[str],
    crs_wkt: str,
    arrays: list[ArraySpec],
    n_blocks: int,
    map_names: list[str],
    attrs: dict[str, Any],
) -> None:
    """Create the store at ``path`` with every array filled with its fill value.

    Every distinct grid of ``arrays`` gets its coordinates and grid mapping
    (see the module docstring); ``pass1_done`` and ``pass1_stats`` hold
    ``n_blocks`` blocks and the statistics of the raw maps ``map_names``.
    ``attrs`` (JSON-serialisable) become the store's attributes, with the grids
    recorded under ``"grids"``.

    Raises:
        ValueError: two arrays or grids share a name, or a name is reserved.
        FileExistsError: ``path`` exists.
    """
    names = [a.name for a in arrays]
    grids = {a.grid.name: a.grid for a in arrays}
    if len(set(names)) != len(names) or set(names) & _RESERVED_NAMES or not map_names:
        raise ValueError(f"array names must be unique and not one of {sorted(_RESERVED_NAMES)}: {names}")
    if len(grids) != len({a.grid for a in arrays}):
        raise ValueError("two different grids share a name")
    if exists(path):
        raise FileExistsError(f"{os.fspath(path)}: already exists")
    with translated(os.fspath(path)):
        _create(_store(path), crs_wkt, arrays, n_blocks, map_names, attrs)


def _store(path: str | os.PathLike[str], read_only: bool = False):
    """What zarr opens for ``path``: the local path itself, or an fsspec store for an ``s3://`` URL."""
    text = os.fspath(path)
    return zarr_store(text, read_only) if is_object_url(text) else text


def _create(store, crs_wkt: str, arrays: list[ArraySpec], n_blocks: int, map_names: list[str], attrs: dict[str, Any]) -> None:
    grids = {a.grid.name: a.grid for a in arrays}
    root = zarr.open_group(store, mode="w-", zarr_format=ZARR_FORMAT)
    georeference = {name: _create_grid(root, crs_wkt, grid, *grid_dims(grid)) for name, grid in grids.items()}
    band_dims = {}
    for spec in arrays:
        y, x, _ = grid_dims(spec.grid)
        dims, shape, chunks = [y, x], (spec.grid.height, spec.grid.width), (spec.grid.chunk, spec.grid.chunk)
        if spec.bands:
            if band_dims.setdefault(spec.band_dim, spec.bands) != spec.bands:
                raise ValueError(f"band dimension {spec.band_dim!r} is used with different bands")
            dims, shape, chunks = [spec.band_dim, *dims], (len(spec.bands), *shape), (len(spec.bands), *chunks)
        extra = {"band_names": list(spec.bands)} if spec.bands else {}
        _create_data(root, spec.name, shape, chunks, spec.dtype, spec.fill_value, dims, delta=spec.delta,
                     **dict(spec.attrs), **extra, **georeference[spec.grid.name])
    for band_dim, bands in band_dims.items():
        _create_coordinate(root, band_dim, np.arange(1, len(bands) + 1, dtype="u1"),
                           {"long_name": f"band ({', '.join(bands)})"})
    _create_data(root, DONE, (n_blocks,), (1,), "u1", None, ["block"],
                 long_name="block written in pass 1 (1) or not (0)")
    _create_data(root, STATS, (n_blocks, len(map_names), 3), (1, len(map_names), 3), "f8", None,
                 ["block", "scale", "stat"], long_name="valid-pixel statistics per block and raw map",
                 stat_names=list(_STAT_NAMES), scale_names=list(map_names))
    records = {name: {"arrays": [a.name for a in arrays if a.grid.name == name], "dims": list(grid_dims(grid)[:2]),
                      "shape": [grid.height, grid.width], "transform": list(grid.transform[:6]), "chunk": grid.chunk}
               for name, grid in grids.items()}
    root.attrs.update({**attrs, "Conventions": "CF-1.8", "grids": records})
    zarr.consolidate_metadata(store, zarr_format=ZARR_FORMAT)


def create_scratch(path: str | os.PathLike[str], arrays: dict[str, tuple[tuple[int, ...], int, str, float]]) -> None:
    """Create (or replace) a plain Zarr store of intermediate arrays, ``name -> (shape, chunk side, dtype,
    fill value)``, chunked in squares over the last two axes; light compression (they are read once)."""
    with translated(os.fspath(path)):
        root = zarr.open_group(_store(path), mode="w", zarr_format=ZARR_FORMAT)
        for name, (shape, chunk, dtype, fill) in arrays.items():
            chunks = (*shape[:-2], min(chunk, shape[-2]), min(chunk, shape[-1]))
            root.create_array(name, shape=shape, dtype=dtype, chunks=chunks, fill_value=fill,
                              compressors=numcodecs.Zstd(level=1))


def _create_grid(root: zarr.Group, crs_wkt: str, spec: GridSpec, y: str, x: str, mapping: str) -> dict[str, Any]:
    """Write the coordinates (pixel centres) and the CF grid-mapping variable of ``spec``.

    Returns the attributes that georeference an array on this grid: the CF
    ``grid_mapping`` (xarray, rioxarray, GDAL >= 3.9), ``coordinates`` (makes
    the grid mapping a coordinate of the array in xarray) and GDAL's own
    ``_CRS`` (read by every GDAL with a Zarr driver, 3.4 on).
    """
    transform = spec.affine
    if transform.b != 0 or transform.d != 0:
        raise ValueError(f"grid {spec.name}: rotated transforms cannot be written as 1-D coordinates")
    cf, axes = _cf_description(crs_wkt)
    x_values = transform.c + (np.arange(spec.width) + 0.5) * transform.a
    y_values = transform.f + (np.arange(spec.height) + 0.5) * transform.e
    _create_coordinate(root, x, x_values, axes["X"])
    _create_coordinate(root, y, y_values, axes["Y"])
    geotransform = " ".join(repr(float(v)) for v in (transform.c, transform.a, transform.b,
                                                      transform.f, transform.d, transform.e))
    root.create_array(mapping, shape=(), dtype="i4", fill_value=None, compressors=None, attributes={
        **cf, "crs_wkt": crs_wkt, "spatial_ref": crs_wkt, "GeoTransform": geotransform, "_ARRAY_DIMENSIONS": []})
    return {"grid_mapping": mapping, "coordinates": mapping, "_CRS": {"wkt": crs_wkt}}


@functools.lru_cache(maxsize=16)
def _cf_description(crs_wkt: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The CF grid-mapping attributes of a CRS and its axes' CF attributes by axis (``X``, ``Y``); pyproj
    takes tens of milliseconds for each, and every grid of a store shares the CRS."""
    crs = pyproj.CRS.from_wkt(crs_wkt)
    return crs.to_cf(), {axis["axis"]: axis for axis in crs.cs_to_cf()}


def _create_coordinate(root: zarr.Group, name: str, values: np.ndarray, attrs: dict[str, Any]) -> None:
    array = root.create_array(name, shape=values.shape, dtype=values.dtype, chunks=values.shape, fill_value=None,
                              compressors=COMPRESSOR, attributes={**attrs, "_ARRAY_DIMENSIONS": [name]})
    array[:] = values


def _create_data(
    root: zarr.Group,
    name: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: str,
    fill_value: float | None,
    dims: list[str],
    delta: bool = False,
    **attrs: Any,
) -> None:
    """Create an array; ``fill_value=None`` means no nodata (missing chunks read as 0, nothing masked);
    ``delta`` adds numcodecs' Delta filter before the compressor (integer arrays)."""
    filters = [numcodecs.Delta(dtype=np.dtype(dtype).str)] if delta else None
    root.create_array(name, shape=shape, dtype=dtype, chunks=chunks, fill_value=fill_value, filters=filters,
                      compressors=COMPRESSOR, attributes={**attrs, "_ARRAY_DIMENSIONS": dims})


def _open(path: str | os.PathLike[str], array: str, mode: str = "r") -> zarr.Array:
    """The array ``array`` of the store at ``path``, opened once per version of its metadata file.

    Opening reads and parses the array's metadata; the pipeline reads and writes the same arrays thousands of
    times, so opened arrays are kept, keyed by the metadata file's identity (a store deleted and created again
    at the same path is opened anew). An ``s3://`` store is opened each time (its metadata is one small GET).
    """
    path = os.fspath(path)
    if is_object_url(path):
        return zarr.open_array(store=_store(path, mode == "r"), path=array, mode=mode, zarr_format=ZARR_FORMAT)
    try:
        stat = os.stat(os.path.join(path, array, ".zarray"))
    except OSError:  # missing (zarr raises the right error) or not a local store
        return zarr.open_array(store=path, path=array, mode=mode, zarr_format=ZARR_FORMAT)
    return _open_cached(path, array, mode, stat.st_ino, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _open_cached(path: str, array: str, mode: str, inode: int, mtime_ns: int) -> zarr.Array:
    return zarr.open_array(store=path, path=array, mode=mode, zarr_format=ZARR_FORMAT)


def _storage_errors(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function(path, ...)`` with a failure of a remote store as a one-line StorageError about ``path``."""

    @functools.wraps(function)
    def wrapper(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> T:
        with translated(os.fspath(path)):
            return function(path, *args, **kwargs)

    return wrapper


@_storage_errors
def write_region(path: str | os.PathLike[str], array: str, row_off: int, col_off: int, data: np.ndarray) -> None:
    """Write ``data`` into ``array`` with its top-left pixel at (``row_off``, ``col_off``).

    ``data`` is ``[h, w]`` for 2-D arrays and ``[bands, h, w]`` for ``lovi`` and ``preview``, in
    the array's dtype. The region must cover whole chunks: offsets multiples of
    the chunk side, and ``h`` (``w``) a multiple of it unless the region ends at
    the array's last row (column). This keeps concurrent writers off each
    other's chunks; a misaligned or out-of-bounds region raises ValueError.
    """
    target = _open(path, array, "r+")
    height, width = data.shape[-2:]
    if data.shape[:-2] != target.shape[:-2]:
        raise ValueError(f"{array}: data of shape {data.shape} does not fit an array of shape {target.shape}")
    for axis, offset, size, extent, chunk in (
        ("rows", row_off, height, target.shape[-2], target.chunks[-2]),
        ("columns", col_off, width, target.shape[-1], target.chunks[-1]),
    ):
        end = offset + size
        if offset < 0 or end > extent:
            raise ValueError(f"{array}: {axis} {offset}:{end} are outside the array (0:{extent})")
        if offset % chunk or (end % chunk and end != extent):
            raise ValueError(f"{array}: {axis} {offset}:{end} are not aligned to its chunks of {chunk}")
    target[..., row_off:row_off + height, col_off:col_off + width] = data


@_storage_errors
def read_region(
    path: str | os.PathLike[str], array: str, row_off: int, col_off: int, height: int, width: int
) -> np.ndarray:
    """Read a ``height x width`` region of ``array`` starting at (``row_off``, ``col_off``).

    The region may extend past the array on any side; pixels outside read as
    the array's fill value (NaN for the float maps, 0 for ``lovi``). Returns
    ``[height, width]`` (``[bands, height, width]`` for ``lovi``) in the array's dtype.
    """
    source = _open(path, array)
    fill = 0 if source.fill_value is None else source.fill_value
    out = np.full((*source.shape[:-2], height, width), fill, dtype=source.dtype)
    rows, cols = source.shape[-2:]
    r0, r1 = max(row_off, 0), min(row_off + height, rows)
    c0, c1 = max(col_off, 0), min(col_off + width, cols)
    if r1 > r0 and c1 > c0:
        out[..., r0 - row_off:r1 - row_off, c0 - col_off:c1 - col_off] = source[..., r0:r1, c0:c1]
    return out


@_storage_errors
def mark_block_done(path: str | os.PathLike[str], block: int, stats: np.ndarray) -> None:
    """Record the pass-1 statistics of block ``block``, then mark it done.

    ``stats`` is ``[n_scales, 3]``: count, sum and sum of squares of the block's
    valid raw values per scale (stored as float64). Call it only once the
    block's maps are written, so a done block is always complete.
    """
    _open(path, STATS, "r+")[block] = np.asarray(stats, dtype=np.float64)
    _open(path, DONE, "r+")[block] = 1


@_storage_errors
def done_blocks(path: str | os.PathLike[str]) -> np.ndarray:
    """Bool ``[n_blocks]``: True for the blocks marked done."""
    return _open(path, DONE)[:] == 1


@_storage_errors
def block_stats(path: str | os.PathLike[str]) -> np.ndarray:
    """Float64 ``[n_blocks, n_scales, 3]``: count, sum and sum of squares per block and scale (0 if not done)."""
    return _open(path, STATS)[:]


@_storage_errors
def update_attrs(path: str | os.PathLike[str], attrs: dict[str, Any]) -> None:
    """Merge ``attrs`` (JSON-serialisable) into the store's attributes and refresh the consolidated metadata."""
    store = _store(path)
    root = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    root.attrs.update(attrs)
    zarr.consolidate_metadata(store, zarr_format=ZARR_FORMAT)


@_storage_errors
def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The store's attributes (its run metadata)."""
    return dict(zarr.open_group(_store(path, read_only=True), mode="r", zarr_format=ZARR_FORMAT).attrs)
