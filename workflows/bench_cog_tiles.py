"""Benchmark: COGs assembled from worker-encoded tiles next to GDAL's COG driver (not a test).

    python -m workflows.bench_cog_tiles [--size 4096] [--tile 512] [--zlib]

For a float32 map in [0, 1] with NaN nodata (like ``combined``), an RGBA map with alpha (the lossless
``lovi``) and the same RGBA map as JPEG with an internal mask (``lovi.tif`` as stored: RGB JPEG quality 90, YCbCr
4:2:0, the alpha as GDAL's 1-bit mask), all ``size`` x ``size`` and smooth like real saliency maps, it times in
one process:

(a) GDAL's COG driver: the Zarr array streamed into a tiled GeoTIFF, then GDAL's COG driver (average overviews,
    on all CPUs) through :func:`gdal_write_cog` (geosal's former export, kept here as the baseline: DEFLATE,
    predictor), or, for JPEG, the same two steps
    here with ``COMPRESS=JPEG QUALITY=90`` (the driver turns the alpha band into the mask);
(b) ``geosal.raster.cog_tiles``: every tile and overview tile encoded here, one after the other, and written
    to a fragment file (what the workers would do, in parallel, each for its own block), then ``write_cog``
    from the fragment files;
(c) ``write_cog`` alone: what stays serial on the client.

Same settings on both sides: DEFLATE level 6 with predictor 3 (float) or 2 (RGBA), or JPEG quality 90 with a
mask; ``tile`` pixel tiles. It prints seconds, file sizes (and bytes per pixel of level 0) and ratios, and
checks that both files hold the same level 0 and the same overviews (lossless), or (JPEG) the same masks at
every level and the mean error of each file's decoded colours against the source's valid pixels at level 0.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
import uuid
import zlib
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import zarr
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from scipy import ndimage

from geosal.raster import cog_tiles
from geosal.raster.cog_tiles import CogLayout, downsample, encode_tile, write_cog
from geosal.raster.store import ZARR_FORMAT

CRS_WKT = CRS.from_epsg(32616).to_wkt()
TRANSFORM = (733601.0, 0.5, 0.0, 3725139.0, 0.0, -0.5)  # GDAL order, as CogLayout takes it
COG_BLOCK = 512
TRANSFORM_AFFINE_ORDER = (0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)  # as gdal_write_cog takes it


def smooth_maps(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ``[1, size, size]`` float32 map in [0, 1] with a NaN margin outside a tilted footprint, and the
    ``[4, size, size]`` uint8 RGBA rendering of it (alpha 0 outside)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((size // 32 + 1, size // 32 + 1))
    field = ndimage.zoom(coarse, size / coarse.shape[0], order=3)[:size, :size]
    field = ((field - field.min()) / (field.max() - field.min())).astype(np.float32)
    rows, cols = np.mgrid[:size, :size]
    outside = rows + 0.3 * cols > 1.1 * size
    combined = np.where(outside, np.nan, field)[None].astype(np.float32)
    hue = (field * 255).astype(np.uint8)
    rgba = np.stack([hue, 255 - hue, (hue // 2 + 64).astype(np.uint8), np.full_like(hue, 255)])
    rgba[:, outside] = 0
    return combined, rgba


def time_gdal(folder: Path, name: str, data: np.ndarray, layout: CogLayout) -> tuple[float, Path]:
    store = folder / "maps.zarr"
    array = zarr.open_array(store=str(store), path=name, mode="w", shape=data.shape, chunks=(data.shape[0], 1024, 1024),
                            dtype=data.dtype, zarr_format=ZARR_FORMAT)
    array[...] = data
    path = folder / f"{name}-gdal.tif"
    started = time.perf_counter()
    if layout.compression == "jpeg":
        gdal_jpeg_cog(store, name, path, layout)
    else:
        gdal_write_cog(store, name, path, CRS_WKT, TRANSFORM_AFFINE_ORDER,
                       nodata=None if layout.alpha else float("nan"), alpha=layout.alpha)
    return time.perf_counter() - started, path


def gdal_jpeg_cog(store: Path, name: str, path: Path, layout: CogLayout, window: int = 1024) -> None:
    """What :func:`gdal_write_cog` does for RGBA, with GDAL's COG driver writing JPEG + mask: the Zarr
    array streamed into a tiled RGBA GeoTIFF, then ``COMPRESS=JPEG QUALITY=90``, average overviews, all CPUs."""
    source = zarr.open_array(store=str(store), path=name, mode="r", zarr_format=ZARR_FORMAT)
    staging = path.with_suffix(".stream.tif")
    profile = {"driver": "GTiff", "width": layout.width, "height": layout.height, "count": 4, "dtype": "uint8",
               "crs": CRS.from_wkt(CRS_WKT), "transform": TRANSFORM_AFFINE_ORDER, "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "ZSTD", "zstd_level": 1, "photometric": "RGB",
               "alpha": "YES", "num_threads": "ALL_CPUS"}
    with rasterio.open(staging, "w", **profile) as staged:
        for row in range(0, layout.height, window):
            for col in range(0, layout.width, window):
                block = source[:, row:row + window, col:col + window]
                staged.write(block, window=Window(col, row, block.shape[-1], block.shape[-2]))
    rasterio.shutil.copy(staging, path, driver="COG", compress="JPEG", quality=layout.compression_level or 90,
                         blocksize=layout.tile, overview_resampling="average", num_threads="ALL_CPUS")
    staging.unlink()


def time_tiles(folder: Path, name: str, layout: CogLayout, data: np.ndarray) -> tuple[float, float, Path]:
    """Seconds to encode every tile of every level into fragment files, seconds of ``write_cog``, the COG."""
    fragments = folder / f"{name}-fragments"
    fragments.mkdir()
    started = time.perf_counter()
    image = data
    for level in range(len(layout.levels)):
        if level:
            image = downsample(layout, image)
        rows, cols = layout.tiles(level)
        for row in range(rows):
            for col in range(cols):
                top, left, height, width = layout.tile_window(level, row, col)
                encoded = encode_tile(layout, image[:, top:top + height, left:left + width])
                (fragments / f"{level}-{row}-{col}").write_bytes(encoded)
    encoding = time.perf_counter() - started
    path = folder / f"{name}-tiles.tif"
    started = time.perf_counter()
    write_cog(path, layout, lambda level, row, col: fragments / f"{level}-{row}-{col}")
    return encoding, time.perf_counter() - started, path


def jpeg_agreement(ours: Path, gdal: Path, rgba: np.ndarray) -> str:
    """Whether both files' masks are equal at every level, and each file's mean absolute colour error against
    the source's valid pixels at level 0."""
    masks_equal, errors = True, []
    with rasterio.open(ours) as a, rasterio.open(gdal) as b:
        count = len(a.overviews(1))
        valid = rgba[3] > 0
        for dataset in (a, b):
            errors.append(np.abs(dataset.read().astype(np.int16) - rgba[:3])[:, valid].mean())
        masks_equal = count == len(b.overviews(1)) and np.array_equal(a.dataset_mask(), b.dataset_mask())
    for level in range(count):
        with rasterio.open(ours, overview_level=level) as a, rasterio.open(gdal, overview_level=level) as b:
            masks_equal = masks_equal and a.shape == b.shape and np.array_equal(a.dataset_mask(), b.dataset_mask())
    return f"masks equal {masks_equal}; mean error ours {errors[0]:.2f}, GDAL {errors[1]:.2f}"


def same_pyramid(first: Path, second: Path) -> tuple[bool, bool]:
    """Whether level 0 and whether every overview of two COGs hold the same pixels (NaN equal to NaN)."""
    with rasterio.open(first) as a, rasterio.open(second) as b:
        level0 = np.array_equal(a.read(), b.read(), equal_nan=True)
        count = len(a.overviews(1))
        if count != len(b.overviews(1)):
            return level0, False
    for level in range(count):
        with rasterio.open(first, overview_level=level) as a, rasterio.open(second, overview_level=level) as b:
            if a.shape != b.shape or not np.array_equal(a.read(), b.read(), equal_nan=True):
                return level0, False
    return level0, True


def gdal_write_cog(
    store_path: str | os.PathLike[str],
    array: str,
    cog_path: str | os.PathLike[str],
    crs_wkt: str,
    transform: tuple[float, ...] | Affine,
    nodata: float | None = None,
    alpha: bool = False,
    resampling: str = "average",
    window: int = 1024,
) -> None:
    """Export ``array`` of the Zarr store as a COG at ``cog_path``.

    ``array`` is ``[h, w]`` or ``[bands, h, w]``; ``transform`` (6 GDAL-order
    coefficients or an Affine) and ``crs_wkt`` georeference it; ``nodata`` is
    declared as is (NaN for the float32 combined map); with ``alpha`` the array
    must have 4 bands, written as red, green, blue and alpha (the uint8 LOVI).
    The array is streamed ``window x window`` pixels at a time (a multiple of
    512 keeps the writes block-aligned) into a temporary tiled GeoTIFF beside
    ``cog_path``, which GDAL's COG driver turns into the COG: DEFLATE, 512 x 512
    blocks, overviews resampled with ``resampling`` down to one block, compressed
    on every CPU (GDAL's NUM_THREADS). The COG
    appears at ``cog_path`` only once complete; the temporary files are removed.
    """
    source = zarr.open_array(store=os.fspath(store_path), path=array, mode="r", zarr_format=ZARR_FORMAT)
    height, width = source.shape[-2:]
    count = source.shape[0] if source.ndim == 3 else 1
    target = Path(cog_path)
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": count, "dtype": str(source.dtype),
        "crs": CRS.from_wkt(crs_wkt), "transform": Affine(*tuple(transform)[:6]), "nodata": nodata,
        "tiled": True, "blockxsize": COG_BLOCK, "blockysize": COG_BLOCK, "compress": "ZSTD", "zstd_level": 1,
        "bigtiff": "IF_SAFER", "num_threads": "ALL_CPUS",
    }
    if alpha:
        if count != 4:
            raise ValueError(f"{array}: an alpha export needs 4 bands (RGBA), the array has {count}")
        profile.update(photometric="RGB", alpha="YES")
    staging = _temporary_path(target, ".stream.tif")
    staged_cog = _temporary_path(target, ".cog.tif")
    try:
        with rasterio.open(staging, "w", **profile) as dst:
            for row in range(0, height, window):
                for col in range(0, width, window):
                    block = source[..., row:row + window, col:col + window]
                    block = block.reshape(count, *block.shape[-2:])
                    dst.write(block, window=Window(col, row, block.shape[-1], block.shape[-2]))
        rasterio.shutil.copy(
            staging, staged_cog, driver="COG", compress="DEFLATE", predictor="YES", blocksize=COG_BLOCK,
            overview_resampling=resampling, bigtiff="IF_SAFER", num_threads="ALL_CPUS",
        )
        os.replace(staged_cog, target)
    finally:
        for path in (staging, staged_cog):
            if os.path.exists(path):
                os.remove(path)


def _temporary_path(target: Path, suffix: str) -> str:
    """A fresh, not yet existing file name in ``target``'s folder (created later with default permissions)."""
    return str(target.parent / f".{target.stem}.{uuid.uuid4().hex}{suffix}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--zlib", action="store_true", help="compress tiles with zlib even where libdeflate is installed")
    args = parser.parse_args(argv)
    if args.zlib:
        cog_tiles._zlib_compress = zlib.compress
    combined, rgba = smooth_maps(args.size)
    maps = {
        "float32 NaN": (combined, CogLayout(args.size, args.size, 1, "float32", CRS_WKT, TRANSFORM, tile=args.tile,
                                            predictor=3, nodata=float("nan"))),
        "uint8 RGBA": (rgba, CogLayout(args.size, args.size, 4, "uint8", CRS_WKT, TRANSFORM, tile=args.tile,
                                       predictor=2, photometric="rgb", alpha=True)),
        "JPEG + mask": (rgba, CogLayout(args.size, args.size, 4, "uint8", CRS_WKT, TRANSFORM, tile=args.tile,
                                        photometric="rgb", mask=True, compression="jpeg", compression_level=90)),
    }
    encoder = "libdeflate" if cog_tiles._zlib_compress.__module__.startswith("deflate") else "zlib"
    print(f"{args.size} x {args.size} px, {args.tile} px tiles, {os.cpu_count()} CPUs (GDAL uses all of them; "
          f"the tile encoding here uses one), tiles compressed by {encoder}")
    header = (f"{'map':12s} {'(a) GDAL s':>10s} {'(b) tiles s':>11s} {'encode s':>9s} {'(c) write s':>11s} "
              f"{'b/a':>6s} {'c/a':>6s} {'GDAL MB':>8s} {'tiles MB':>8s} {'size':>6s} {'B/px':>5s}  "
              "same level 0 / overviews, or JPEG agreement")
    print(header)
    for name, (data, layout) in maps.items():
        with tempfile.TemporaryDirectory() as folder:
            gdal_seconds, gdal_path = time_gdal(Path(folder), "map", data, layout)
            encoding, writing, tiles_path = time_tiles(Path(folder), "map", layout, data)
            gdal_mb, tiles_mb = gdal_path.stat().st_size / 1e6, tiles_path.stat().st_size / 1e6
            if layout.compression == "jpeg":
                agreement = jpeg_agreement(tiles_path, gdal_path, data)
            else:
                agreement = " / ".join(map(str, same_pyramid(gdal_path, tiles_path)))
            total = encoding + writing
            bytes_per_pixel = tiles_mb * 1e6 / math.prod(data.shape[1:])
            print(f"{name:12s} {gdal_seconds:10.2f} {total:11.2f} {encoding:9.2f} {writing:11.3f} "
                  f"{total / gdal_seconds:6.2f} {writing / gdal_seconds:6.3f} {gdal_mb:8.1f} {tiles_mb:8.1f} "
                  f"{tiles_mb / gdal_mb:6.2f} {bytes_per_pixel:5.2f}  {agreement}")


if __name__ == "__main__":
    main()
