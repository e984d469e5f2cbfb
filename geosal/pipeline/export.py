"""Export a finished scene: COGs, QGIS styles, quicklook and STAC Item.

Runs once per scene on the client after the overview stages. Nothing here
grows with the scene's pixels beyond a byte copy: the COGs are assembled from
the tiles the workers encoded (:func:`geosal.raster.cog_tiles.write_cog`), the
quicklook is drawn from the preview pass 1 stored and from an overview level
of at most :data:`QUICKLOOK_SIDE` pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from geosal.models.card import MLM_SCHEMA, stac_mlm_fields
from geosal.pipeline.job import SceneJob
from geosal.pipeline.layout import COG_CODES, cog_layouts, decode_units, output_layers, scene_grids
from geosal.pipeline.overviews import pyramid_levels
from geosal.pipeline.pass2 import PYRAMID, TILES, partial_folder, pyramid_array, pyramid_path, tile_path
from geosal.pipeline.plan import PREVIEW_SIDE
from geosal.raster import make_item, read_region, write_item, write_qml_pseudocolor, write_qml_rgba, write_quicklook
from geosal.raster.cog_tiles import CogLayout, write_cog
from geosal.raster.objects import absolute, is_url, join, read_many, remove_tree, writing
from geosal.raster.store import COMBINED, FAST_CAM, LOVI, PREVIEW

QUICKLOOK_SIDE = PREVIEW_SIDE
QUICKLOOK = "quicklook.jpg"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
FETCH_BATCH = 64
"""Encoded tiles fetched at once from an object store while a COG is assembled."""


def export_layers(job: SceneJob, folder: str | Path) -> list[str]:
    """Write ``combined.tif``, ``lovi.tif`` (and ``fast_cam.tif``) from the encoded tiles, with their ``.qml``
    styles, into ``folder`` (a local folder, or an ``s3://`` prefix: each file is assembled in a temporary file
    and uploaded whole); returns the names of the files written."""
    written = []
    for name, layout in cog_layouts(job.plan).items():
        with writing(join(folder, f"{name}.tif")) as target:
            write_cog(target, layout, _tile_source(job, name, layout))
        with writing(join(folder, f"{name}.qml")) as style:
            (write_qml_rgba if name == LOVI else write_qml_pseudocolor)(style)
        written += [f"{name}.tif", f"{name}.qml"]
    return written


def _tile_source(job: SceneJob, layer: str, layout: CogLayout) -> Callable[[int, int, int], str | bytes]:
    """``write_cog``'s tile source for ``layer``: the fragment files' paths, or for fragments in an object store
    their bytes, fetched :data:`FETCH_BATCH` at a time (concurrently) in the order ``write_cog`` asks for them."""
    if not is_url(job.store):
        return lambda level, row, col: tile_path(job, layer, level, row, col)
    order = [(level, row, col) for level in reversed(range(len(layout.levels)))
             for row in range(layout.tiles(level)[0]) for col in range(layout.tiles(level)[1])]
    position = {tile: index for index, tile in enumerate(order)}
    fetched: dict[tuple[int, int, int], bytes] = {}

    def source(level: int, row: int, col: int) -> bytes:
        if (level, row, col) not in fetched:
            start = position[level, row, col]
            batch = order[start:start + FETCH_BATCH]
            fetched.clear()
            fetched.update(zip(batch, read_many([tile_path(job, layer, *tile) for tile in batch])))
        return fetched.pop((level, row, col))

    return source


def layer_overview(job: SceneJob, layer: str, max_side: int):
    """``layer``'s COG pixels ``[bands, h, w]`` from the scratch pyramid, at the finest level whose longer
    side is at most ``max_side`` (the coarsest level otherwise; see :func:`~geosal.pipeline.overviews.pyramid_levels`)."""
    layout = cog_layouts(job.plan)[layer]
    levels = pyramid_levels(layout)
    level = next((i for i in levels if max(layout.levels[i]) <= max_side), levels[-1])
    height, width = layout.levels[level]
    return read_region(pyramid_path(job), pyramid_array(layer, level), 0, 0, height, width)


def export_quicklook(job: SceneJob, folder: str | Path) -> None:
    """``quicklook.jpg``: the scene (the preview pass 1 stored: the model's input,
    scene-wide scaling, never a re-read of the source), the combined map and LOVI."""
    plan = job.plan
    stride = plan.preview_stride
    rows, cols = -(-plan.grid.height // stride), -(-plan.grid.width // stride)
    scene = read_region(job.store, PREVIEW, 0, 0, rows, cols)
    step = max(1, -(-max(rows, cols) // QUICKLOOK_SIDE))  # when the block side capped the preview stride
    scene = scene[:, ::step, ::step]
    combined = decode_units(layer_overview(job, COMBINED, QUICKLOOK_SIDE)[0], COG_CODES)
    lovi = layer_overview(job, LOVI, QUICKLOOK_SIDE)
    with writing(join(folder, QUICKLOOK)) as target:
        write_quicklook(target, scene[:3] if len(scene) >= 3 else scene[:1], combined, lovi)


def export_stac(job: SceneJob, folder: str | Path, metadata: dict) -> None:
    """``item.json``: a STAC Item linking every output (relative hrefs, valid wherever the folder is: a disk, a
    bucket) and the source scene (its absolute path or URL)."""
    plan = job.plan
    output = scene_grids(plan).output
    resolution = abs(output.affine.a)
    unit_band = {"data_type": "uint8", "nodata": COG_CODES + 1, "scale": 1 / COG_CODES, "offset": 0.0,
                 "statistics": {"minimum": 0.0, "maximum": 1.0}, "spatial_resolution": resolution, "unit": "1"}
    assets = {
        COMBINED: {"href": "./combined.tif", "type": COG_MEDIA_TYPE, "title": "combined SMOE saliency", "roles": ["data"],
                   "raster_bands": [unit_band]},
        LOVI: {"href": "./lovi.tif", "type": COG_MEDIA_TYPE, "title": "LOVI rendering (RGB, JPEG, with a mask)",
               "roles": ["visual"], "raster_bands": [{"data_type": "uint8", "spatial_resolution": resolution}] * 3},
        "zarr": {"href": "./saliency.zarr", "type": "application/vnd+zarr", "title": "all maps (Zarr v2)", "roles": ["data"]},
        "quicklook": {"href": f"./{QUICKLOOK}", "type": "image/jpeg", "title": "quicklook", "roles": ["overview"]},
        "combined_style": {"href": "./combined.qml", "type": "text/xml", "title": "QGIS style", "roles": ["style"]},
        "lovi_style": {"href": "./lovi.qml", "type": "text/xml", "title": "QGIS style", "roles": ["style"]},
    }
    if FAST_CAM in output_layers(plan):
        assets[FAST_CAM] = {**assets[COMBINED], "href": "./fast_cam.tif", "title": "Fast-CAM (SMOE x Grad-CAM)"}
    described = ("model", "statistic", "weights", "layers", "tile", "halo", "notes", "bad_blocks")
    properties = {f"geosal:{k}": v for k, v in metadata.items() if k in described} | stac_mlm_fields(plan.spec)
    item = make_item(job.name, plan.scene, output.affine, (output.height, output.width), assets, properties,
                     source_href=absolute(plan.scene.path))
    item.stac_extensions.append(MLM_SCHEMA)  # the model that explains the scene, as the ML Model extension says
    with writing(join(folder, "item.json")) as target:
        write_item(item, target)


def remove_scratch(job: SceneJob) -> None:
    """Remove the encoded tiles and the scratch pyramid from the partial output folder."""
    folder = partial_folder(job)
    for name in (TILES, PYRAMID):
        remove_tree(join(folder, name))
