"""Export a finished scene: COGs, QGIS styles, quicklook and STAC Item.

Runs once per scene on the client after pass 2, reading the Zarr store in
windows (memory stays bounded for any scene size).
"""

from __future__ import annotations

from pathlib import Path

from geosal.pipeline.job import SceneJob
from geosal.pipeline.plan import PREVIEW_SIDE, ScenePlan
from geosal.raster import (
    make_item,
    read_overview,
    read_region,
    write_cog,
    write_item,
    write_qml_pseudocolor,
    write_qml_rgba,
    write_quicklook,
)
from geosal.raster.store import COMBINED, FAST_CAM, LOVI, PREVIEW

QUICKLOOK_SIDE = PREVIEW_SIDE


def working_transform(plan: ScenePlan) -> tuple[float, ...]:
    """The six GDAL-order coefficients of the working grid."""
    return tuple(plan.grid.transform(plan.scene)[:6])


def export_layers(job: SceneJob, folder: Path, with_fast_cam: bool) -> list[str]:
    """Write ``combined.tif``, ``lovi.tif`` (and ``fast_cam.tif``) as COGs with their ``.qml`` styles.

    Returns the names of the files written.
    """
    crs = job.plan.scene.crs_wkt
    transform = working_transform(job.plan)
    written = []
    for name in [COMBINED] + ([FAST_CAM] if with_fast_cam else []):
        write_cog(job.store, name, folder / f"{name}.tif", crs, transform, nodata=float("nan"))
        write_qml_pseudocolor(folder / f"{name}.qml")
        written += [f"{name}.tif", f"{name}.qml"]
    write_cog(job.store, LOVI, folder / "lovi.tif", crs, transform, alpha=True)
    write_qml_rgba(folder / "lovi.qml")
    return written + ["lovi.tif", "lovi.qml"]


def export_quicklook(job: SceneJob, folder: Path) -> None:
    """``quicklook.png``: the scene (the preview pass 1 stored: the model's input,
    scene-wide scaling, never a re-read of the source), the combined map and LOVI."""
    plan = job.plan
    stride = plan.preview_stride
    rows, cols = -(-plan.grid.height // stride), -(-plan.grid.width // stride)
    scene = read_region(job.store, PREVIEW, 0, 0, rows, cols)
    step = max(1, -(-max(rows, cols) // QUICKLOOK_SIDE))  # when the block side capped the preview stride
    scene = scene[:, ::step, ::step]
    combined = read_overview(folder / "combined.tif", (1,), QUICKLOOK_SIDE)[0]
    lovi = read_overview(folder / "lovi.tif", (1, 2, 3, 4), QUICKLOOK_SIDE, resampling="nearest")
    write_quicklook(folder / "quicklook.png", scene[:3] if len(scene) >= 3 else scene[:1], combined, lovi)


def export_stac(job: SceneJob, folder: Path, metadata: dict, with_fast_cam: bool) -> None:
    """``item.json``: a STAC Item linking every output and the source scene."""
    plan = job.plan
    resolution = abs(plan.grid.transform(plan.scene).a)
    float_band = {"data_type": "float32", "nodata": float("nan"), "statistics": {"minimum": 0.0, "maximum": 1.0},
                  "spatial_resolution": resolution, "unit": "1"}
    assets = {
        "combined": {"href": "./combined.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                     "title": "combined SMOE saliency", "roles": ["data"], "raster_bands": [float_band]},
        "lovi": {"href": "./lovi.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                 "title": "LOVI rendering (RGBA)", "roles": ["visual"],
                 "raster_bands": [{"data_type": "uint8", "spatial_resolution": resolution}] * 4},
        "zarr": {"href": "./saliency.zarr", "type": "application/vnd+zarr", "title": "all maps (Zarr v2)", "roles": ["data"]},
        "quicklook": {"href": "./quicklook.png", "type": "image/png", "title": "quicklook", "roles": ["overview"]},
        "combined_style": {"href": "./combined.qml", "type": "text/xml", "title": "QGIS style", "roles": ["style"]},
        "lovi_style": {"href": "./lovi.qml", "type": "text/xml", "title": "QGIS style", "roles": ["style"]},
    }
    if with_fast_cam:
        assets["fast_cam"] = {**assets["combined"], "href": "./fast_cam.tif", "title": "Fast-CAM (SMOE x Grad-CAM)"}
    described = ("model", "statistic", "weights", "layers", "tile", "halo", "notes")
    properties = {f"geosal:{k}": v for k, v in metadata.items() if k in described}
    item = make_item(job.name, plan.scene, working_transform(plan), (plan.grid.height, plan.grid.width),
                     assets, properties, source_href=str(Path(plan.scene.path).resolve()))
    write_item(item, folder / "item.json")
