"""Export a finished scene: COGs, QGIS styles, quicklook and STAC Item.

Runs once per scene on the client after the overview stages. Nothing here
grows with the scene's pixels beyond a byte copy: the COGs are assembled from
the tiles the workers encoded (:func:`geosal.raster.cog_tiles.write_cog`), the
quicklook is drawn from the preview pass 1 stored and from an overview level
of at most :data:`QUICKLOOK_SIDE` pixels.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from geosal.models.card import MLM_SCHEMA, stac_mlm_fields
from geosal.pipeline.job import SceneJob
from geosal.pipeline.layout import COG_CODES, cog_layouts, decode_units, output_layers, scene_grids
from geosal.pipeline.overviews import pyramid_levels
from geosal.pipeline.pass2 import PYRAMID, TILES, partial_folder, pyramid_array, pyramid_path, tile_path
from geosal.pipeline.plan import PREVIEW_SIDE
from geosal.raster import make_item, read_region, write_item, write_qml_pseudocolor, write_qml_rgba, write_quicklook
from geosal.raster.cog_tiles import write_cog
from geosal.raster.store import COMBINED, FAST_CAM, LOVI, PREVIEW

QUICKLOOK_SIDE = PREVIEW_SIDE
QUICKLOOK = "quicklook.jpg"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def export_layers(job: SceneJob, folder: Path) -> list[str]:
    """Write ``combined.tif``, ``lovi.tif`` (and ``fast_cam.tif``) from the encoded tiles, with their ``.qml``
    styles; returns the names of the files written."""
    written = []
    for name, layout in cog_layouts(job.plan).items():
        write_cog(folder / f"{name}.tif", layout, lambda level, row, col, name=name: tile_path(job, name, level, row, col))
        style = folder / f"{name}.qml"
        (write_qml_rgba if name == LOVI else write_qml_pseudocolor)(style)
        written += [f"{name}.tif", style.name]
    return written


def layer_overview(job: SceneJob, layer: str, max_side: int):
    """``layer``'s COG pixels ``[bands, h, w]`` from the scratch pyramid, at the finest level whose longer
    side is at most ``max_side`` (the coarsest level otherwise; see :func:`~geosal.pipeline.overviews.pyramid_levels`)."""
    layout = cog_layouts(job.plan)[layer]
    levels = pyramid_levels(layout)
    level = next((i for i in levels if max(layout.levels[i]) <= max_side), levels[-1])
    height, width = layout.levels[level]
    return read_region(pyramid_path(job), pyramid_array(layer, level), 0, 0, height, width)


def export_quicklook(job: SceneJob, folder: Path) -> None:
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
    write_quicklook(folder / QUICKLOOK, scene[:3] if len(scene) >= 3 else scene[:1], combined, lovi)


def export_stac(job: SceneJob, folder: Path, metadata: dict) -> None:
    """``item.json``: a STAC Item linking every output and the source scene."""
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
                     source_href=str(Path(plan.scene.path).resolve()))
    item.stac_extensions.append(MLM_SCHEMA)  # the model that explains the scene, as the ML Model extension says
    write_item(item, folder / "item.json")


def remove_scratch(job: SceneJob) -> None:
    """Remove the encoded tiles and the scratch pyramid from the partial output folder."""
    folder = partial_folder(job)
    for name in (TILES, PYRAMID):
        shutil.rmtree(folder / name, ignore_errors=True)
