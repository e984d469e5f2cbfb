"""STAC Item describing one scene's outputs (``item.json``)."""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from typing import Any

import pystac
import rasterio.transform
import rasterio.warp
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension, Statistics

from geosal.raster.errors import RasterInputError
from geosal.raster.source import SceneInfo

_EDGE_POINTS = 21
_WGS84 = "EPSG:4326"


def make_item(
    item_id: str,
    info: SceneInfo,
    grid_transform: tuple[float, ...] | Affine,
    grid_shape: tuple[int, int],
    assets: dict[str, dict[str, Any]],
    properties: dict[str, Any],
    source_href: str,
) -> pystac.Item:
    """A STAC Item for outputs on the grid ``grid_transform`` / ``grid_shape`` ``(height, width)``.

    Geometry and bbox are the grid's footprint in EPSG:4326 (edges densified so
    curved projections are followed). ``datetime`` is ``properties["datetime"]``
    (ISO string or datetime) or now, UTC. The projection extension gives
    ``proj:code`` (when the CRS has an EPSG code), ``proj:wkt2``, ``proj:shape``
    and ``proj:transform``. Each entry of ``assets`` is ``{"href", "type",
    "title", "roles", "raster_bands"}`` (all but ``href`` optional);
    ``raster_bands`` is a list of ``{"data_type", "nodata", "statistics":
    {"minimum", "maximum"}, "spatial_resolution", "unit", "scale", "offset"}`` for the raster
    extension (NaN nodata is written as ``"nan"``). A ``derived_from`` link points to
    ``source_href``. Raises :class:`RasterInputError` when the scene has no CRS.
    """
    crs = info.crs
    if crs is None:
        raise RasterInputError(f"{info.path}: no coordinate reference system, so no STAC footprint")
    transform = Affine(*tuple(grid_transform)[:6])
    height, width = grid_shape
    left, bottom, right, top = rasterio.transform.array_bounds(height, width, transform)
    footprint = rasterio.warp.transform_geom(crs, _WGS84, _densified_box(left, bottom, right, top))
    bbox = rasterio.warp.transform_bounds(crs, _WGS84, left, bottom, right, top, densify_pts=_EDGE_POINTS)
    extra = dict(properties)
    item = pystac.Item(
        id=item_id,
        geometry=footprint,
        bbox=list(bbox),
        datetime=_item_datetime(extra.pop("datetime", None)),
        properties=extra,
    )
    epsg = crs.to_epsg()
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=f"EPSG:{epsg}" if epsg else None,
        wkt2=crs.to_wkt(version="WKT2_2019"),
        shape=[height, width],
        transform=list(transform[:6]),
    )
    for key, spec in assets.items():
        asset = pystac.Asset(
            href=spec["href"], media_type=spec.get("type"), title=spec.get("title"), roles=spec.get("roles")
        )
        item.add_asset(key, asset)
        if "raster_bands" in spec:
            RasterExtension.ext(asset, add_if_missing=True).apply(
                bands=[_raster_band(band) for band in spec["raster_bands"]]
            )
    item.add_link(pystac.Link(rel="derived_from", target=source_href, media_type=pystac.MediaType.GEOTIFF))
    return item


def write_item(item: pystac.Item, path: str | os.PathLike[str]) -> None:
    """Write ``item`` as JSON to ``path``, asset hrefs relative to it and no self link."""
    item.set_self_href(os.path.abspath(path))
    item.make_asset_hrefs_relative()
    item.save_object(include_self_link=False)


def _densified_box(left: float, bottom: float, right: float, top: float) -> dict[str, Any]:
    """GeoJSON polygon of the box, counter-clockwise, with ``_EDGE_POINTS`` points per edge."""
    steps = [i / (_EDGE_POINTS - 1) for i in range(_EDGE_POINTS - 1)]
    ring = (
        [(left + s * (right - left), bottom) for s in steps]
        + [(right, bottom + s * (top - bottom)) for s in steps]
        + [(right - s * (right - left), top) for s in steps]
        + [(left, top - s * (top - bottom)) for s in steps]
    )
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _item_datetime(value: str | datetime | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        return pystac.utils.str_to_datetime(value)
    return value


def _raster_band(spec: dict[str, Any]) -> RasterBand:
    nodata = spec.get("nodata")
    if isinstance(nodata, float) and math.isnan(nodata):
        nodata = "nan"
    statistics = spec.get("statistics")
    return RasterBand.create(
        data_type=spec.get("data_type"),
        nodata=nodata,
        statistics=Statistics.create(**statistics) if statistics else None,
        spatial_resolution=spec.get("spatial_resolution"),
        unit=spec.get("unit"),
        scale=spec.get("scale"),
        offset=spec.get("offset"),
    )
