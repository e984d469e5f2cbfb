"""GDAL's block cache, bounded so that memory does not grow with the scene.

GDAL keeps decoded raster blocks in one process-wide cache whose default size
is 5 % of the machine's RAM. geosal reads each source pixel once or twice
(pass 1 and the quicklook), so a large cache buys nothing and, on a big scene,
fills up with blocks that are never read again: peak memory then grows with
the scene instead of staying flat.
"""

from __future__ import annotations

from rasterio.env import get_gdal_config, set_gdal_config

DEFAULT_GDAL_CACHE_MB = 256


def bound_gdal_cache(megabytes: int = DEFAULT_GDAL_CACHE_MB) -> None:
    """Set GDAL's block cache of this process to ``megabytes`` MiB (> 0).

    Idempotent and cheap; call it before reading or writing rasters in any
    process that runs pipeline work (the client and every Dask worker).
    """
    if megabytes <= 0:
        raise ValueError(f"the GDAL cache needs a positive size in MiB, got {megabytes}")
    limit = int(megabytes) * 2**20
    if get_gdal_config("GDAL_CACHEMAX") != limit:
        set_gdal_config("GDAL_CACHEMAX", limit)
