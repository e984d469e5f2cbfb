"""``geosal run SCENE OUT``: the saliency layers of one scene."""

from __future__ import annotations

import argparse
import shlex
import time

from geosal.cli.options import add_run_options, config_from_args, configure_storage

DESCRIPTION = (
    "Compute the per-scale and combined SMOE saliency of SCENE (any GeoTIFF: a path, an https:// or an s3:// URL) "
    "and write OUT/<scene-name>/ (a folder, or an s3://bucket/prefix): saliency.zarr, combined.tif and lovi.tif (COGs), "
    "QGIS styles, quicklook.jpg and a STAC item.json. Credentials and endpoints for s3:// come from the standard AWS "
    "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE)."
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``run`` to ``geosal``'s sub-commands; returns its parser."""
    parser = subparsers.add_parser("run", help="saliency layers of one scene", description=DESCRIPTION)
    parser.add_argument("scene", help="input raster (GeoTIFF or anything GDAL reads): a path, https://... or s3://bucket/key")
    parser.add_argument("out", help="output folder or s3://bucket/prefix; the scene's layers go to OUT/<scene-name>/")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace an existing output")
    existing.add_argument("--resume", action="store_true", help="continue an interrupted run, recomputing only unfinished blocks")
    add_run_options(parser)
    parser.set_defaults(handler=command)
    return parser


def command(args: argparse.Namespace) -> int:
    """Plan the scene (every check before any cluster starts), run it, print where the outputs are."""
    from geosal.cluster import check_device, open_executor
    from geosal.pipeline import execute_scene, prepare_scene
    from geosal.raster.objects import gdal_path, is_url

    config = config_from_args(args)
    configure_storage(config)
    check_device(config.compute)
    started = time.perf_counter()
    prepared = prepare_scene(args.scene, args.out, config, overwrite=args.overwrite, resume=args.resume)
    if prepared.complete:
        print(f"geosal: {prepared.final} is already complete (nothing to resume)")
        return 0
    with open_executor(config.compute) as executor:
        result = execute_scene(prepared, executor)
    for note in result.notes:
        print(f"note: {note}")
    elapsed = time.perf_counter() - started
    resumed = f", {result.blocks_skipped} of {result.blocks} blocks already done before this run" if result.blocks_skipped else ""
    out = result.output
    gdal_out = gdal_path(out)  # GDAL names an object /vsis3/bucket/key
    print(
        f"geosal: {result.tiles_computed} tiles in {elapsed:.1f} s ({result.tiles_per_second:.2f} tiles/s in pass 1{resumed})\n"
        f"  outputs: {out}/\n"
        f"    combined.tif, lovi.tif  Cloud-Optimized GeoTIFFs; QGIS: Layer > Add Raster Layer, then Layer Properties > Style > "
        f"Load Style ({out}/combined.qml)\n"
        f"    saliency.zarr           all maps; xarray.open_zarr('{out}/saliency.zarr') or "
        f"rasterio.open('ZARR:\"{gdal_out}/saliency.zarr\":/combined')\n"
        f"    quicklook.jpg, item.json (STAC)"
    )
    if not is_url(out):
        print(f"  look at them: geosal view {shlex.quote(str(out))}")
    return 0
