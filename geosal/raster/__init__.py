"""Raster I/O for geosal: pure rasterio / numpy / zarr / pystac, no torch.

- :func:`inspect_scene`, :func:`working_grid`, :func:`read_window` — the source
  scene, the grid we work on and padded windowed reads with a validity mask;
- :func:`compute_scaling`, :func:`to_uint8` — scene-wide intensity scaling;
- :func:`create_store` and friends — the georeferenced Zarr output store;
- :mod:`~geosal.raster.cog_tiles` — COGs assembled from tiles encoded anywhere;
- :func:`write_qml_pseudocolor`, :func:`write_qml_rgba`, :func:`make_item`,
  :func:`write_item`, :func:`write_quicklook` — the other exports.

User-caused problems raise :class:`RasterInputError` with one line naming the file.
"""

from geosal.raster.errors import RasterInputError
from geosal.raster.gdal_cache import bound_gdal_cache
from geosal.raster.quicklook import write_quicklook
from geosal.raster.scaling import BandScaling, compute_scaling, to_uint8
from geosal.raster.source import SUPPORTED_DTYPES, SceneInfo, WorkingGrid, inspect_scene, read_window, working_grid
from geosal.raster.stac import make_item, write_item
from geosal.raster.store import (
    GridSpec,
    block_stats,
    create_store,
    done_blocks,
    mark_block_done,
    read_region,
    update_attrs,
    write_region,
)
from geosal.raster.styles import write_qml_pseudocolor, write_qml_rgba

__all__ = [
    "bound_gdal_cache",
    "SUPPORTED_DTYPES", "BandScaling", "GridSpec", "RasterInputError", "SceneInfo", "WorkingGrid",
    "block_stats", "compute_scaling", "create_store", "done_blocks", "inspect_scene", "make_item",
    "mark_block_done", "read_region", "read_window", "to_uint8", "update_attrs",
    "working_grid", "write_item", "write_qml_pseudocolor", "write_qml_rgba", "write_quicklook",
    "write_region",
]
