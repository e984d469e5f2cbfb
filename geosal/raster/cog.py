"""Cloud-Optimized GeoTIFF export of a Zarr store array."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import rasterio
import rasterio.shutil
import zarr
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from geosal.raster.store import ZARR_FORMAT

COG_BLOCK = 512


def write_cog(
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
