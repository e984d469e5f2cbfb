"""The ``geosal`` command.

    geosal run SCENE OUT [options]        saliency layers of one scene
    geosal submit ARCHIVE OUT [options]   a whole archive (folder, glob or STAC)
    geosal evaluate [options]             faithfulness of saliency methods (KAR/ROAR, ROAD)

Errors a user can cause end in one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

import yaml

from geosal.cluster import ClusterError
from geosal.config import ConfigError, RunConfig, load_config
from geosal.models import ModelLoadError
from geosal.pipeline import OutputError, PlanError
from geosal.raster import RasterInputError

USER_ERRORS = (ConfigError, RasterInputError, ModelLoadError, PlanError, OutputError, ClusterError, FileNotFoundError)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``submit``: each overrides the config file."""
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (see configs/); options below override it")
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME_OR_PATH",
                       help="ucmerced-resnet18 (default, shipped), a torchvision name such as resnet50:IMAGENET1K_V2, timm:convnext_tiny, "
                            "TorchGeo weights such as ResNet50_Weights.SENTINEL2_ALL_MOCO, or a checkpoint file (see docs/models.md)")
    model.add_argument("--architecture",
                       help="architecture of a plain state-dict checkpoint, e.g. resnet50, timm:convnext_tiny, smp:Unet, torchgeo:resnet50")
    model.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                       help="build the network with package.module:function (keyword arguments: --model-option) and load --model into it")
    model.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                       help="keyword argument of the model builder or factory (value read as YAML), repeatable")
    model.add_argument("--gsd", type=float, metavar="METRES", help="ground sample distance the model was trained at (overrides its spec)")
    saliency = parser.add_argument_group("saliency")
    saliency.add_argument("--statistic", help="per-location statistic (default smoe_scale; also std, mean, max, shannon_entropy, ...)")
    saliency.add_argument("--weights", help="layer weights of the combined map: equal, linear, prior, or a comma list such as 1,2,3,4,5")
    saliency.add_argument("--layers", help="comma-separated scale-end module names (default: found automatically)")
    saliency.add_argument("--fast-cam-class", metavar="CLASS", help="also write fast_cam.tif: SMOE x Grad-CAM for this class (name or index)")
    tiling = parser.add_argument_group("tiling (pixels of the working grid; multiples of the network stride)")
    tiling.add_argument("--tile", type=int, help="tile core size (default 512)")
    tiling.add_argument("--halo", type=int, help="context read around each tile and cropped away (default 64)")
    tiling.add_argument("--block-tiles", type=int, help="tiles per block side; a block is one task (default 2)")
    tiling.add_argument("--batch-size", type=int, help="tiles per forward pass (default 4)")
    source = parser.add_argument_group("input")
    source.add_argument("--bands", help="1-based bands to feed the model, e.g. 1,2,3 (default: all, or the first 3 of RGBN)")
    source.add_argument("--resample", choices=["auto", "model", "native"],
                        help="resample to the model's ground sample distance: auto (when within 8x), model (always), native (never)")
    source.add_argument("--allow-missing-georeference", action="store_true", default=None,
                        help="accept rasters without a geotransform or CRS (outputs then have pixel coordinates)")
    compute = parser.add_argument_group("compute")
    compute.add_argument("--scheduler", metavar="ADDRESS",
                         help="use a running Dask scheduler (tcp://host:8786); 'in-process' runs without Dask; default: start a local cluster")
    compute.add_argument("--workers", type=int, help="workers of the local cluster")
    compute.add_argument("--threads-per-worker", type=int, help="threads per local worker (torch uses them in a forward pass)")
    compute.add_argument("--memory-limit", help="memory limit per local worker, e.g. 4GiB (default auto)")
    compute.add_argument("--device", help="cpu, cuda, cuda:1 or auto (default: cuda when available)")
    compute.add_argument("--gpu", action="store_true", default=None, help="tasks request the GPU worker resource")
    compute.add_argument("--autocast", choices=["none", "bf16", "fp16"], help="mixed-precision forward (statistics stay float32)")
    compute.add_argument("--compile", action="store_true", default=None,
                         help="torch.compile the network with the statistics inside (faster after a one-off compilation)")


def _split(value: str | None, cast=str):
    return None if value is None else [cast(v) for v in value.split(",") if v.strip()]


def _weights(value: str | None):
    if value is None or value in ("equal", "linear", "prior"):
        return value
    return _split(value, float)


def _options(values: list[str] | None) -> dict | None:
    if not values:
        return None
    options = {}
    for item in values:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--model-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--model-option {item!r}: the value is not valid YAML") from None
    return options


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The config file (if any) with command-line overrides applied."""
    overrides = {
        "model": {"name": args.model, "architecture": args.architecture, "gsd_m": args.gsd,
                  "factory": args.model_factory, "options": _options(args.model_option)},
        "saliency": {"statistic": args.statistic, "weights": _weights(args.weights), "layers": _split(args.layers),
                     "fast_cam_class": args.fast_cam_class},
        "tiling": {"tile": args.tile, "halo": args.halo, "block_tiles": args.block_tiles, "batch_size": args.batch_size},
        "input": {"bands": _split(args.bands, int), "resample": args.resample,
                  "allow_missing_georeference": args.allow_missing_georeference},
        "compute": {"scheduler": args.scheduler, "workers": args.workers, "threads_per_worker": args.threads_per_worker,
                    "memory_limit": args.memory_limit, "device": args.device, "gpu": args.gpu, "autocast": args.autocast,
                    "compile": args.compile},
    }
    return load_config(args.config, overrides)


@contextlib.contextmanager
def executor_for(config: RunConfig, quiet: bool = False):
    """An executor for the config: in-process, or Dask (local cluster or ``--scheduler``)."""
    from geosal.pipeline import InProcessExecutor

    if config.compute.scheduler == "in-process":
        yield InProcessExecutor()
        return
    from geosal.cluster import DaskExecutor, cluster_client

    with cluster_client(config.compute, quiet=quiet) as client:
        yield DaskExecutor(client, gpu=config.compute.gpu)


def command_run(args: argparse.Namespace) -> int:
    from geosal.pipeline.scene import execute_scene, prepare_scene

    config = config_from_args(args)
    started = time.perf_counter()
    prepared = prepare_scene(args.scene, args.out, config, overwrite=args.overwrite, resume=args.resume)
    if prepared.complete:
        print(f"geosal: {prepared.final} is already complete (nothing to resume)")
        return 0
    with executor_for(config) as executor:
        result = execute_scene(prepared, executor)
    for note in result.notes:
        print(f"note: {note}")
    elapsed = time.perf_counter() - started
    resumed = f", {result.blocks_skipped} of {result.blocks} blocks already done before this run" if result.blocks_skipped else ""
    print(
        f"geosal: {result.tiles_computed} tiles in {elapsed:.1f} s ({result.tiles_per_second:.2f} tiles/s in pass 1{resumed})\n"
        f"  outputs: {result.output}/\n"
        f"    combined.tif, lovi.tif  Cloud-Optimized GeoTIFFs; QGIS: Layer > Add Raster Layer, then Layer Properties > Style > Load Style ({result.output}/combined.qml)\n"
        f"    saliency.zarr           all maps; xarray.open_zarr('{result.output}/saliency.zarr') or rasterio.open('ZARR:\"{result.output}/saliency.zarr\":/combined')\n"
        f"    quicklook.png, item.json (STAC)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="geosal", description="SMOE Scale saliency maps of CNNs over georeferenced imagery.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="saliency layers of one scene", description=(
        "Compute the per-scale and combined SMOE saliency of SCENE (any GeoTIFF) and write OUT/<scene-name>/: "
        "saliency.zarr, combined.tif and lovi.tif (COGs), QGIS styles, quicklook.png and a STAC item.json."))
    run.add_argument("scene", help="input raster (GeoTIFF or anything GDAL reads)")
    run.add_argument("out", help="output folder; the scene's layers go to OUT/<scene-name>/")
    existing = run.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace an existing output")
    existing.add_argument("--resume", action="store_true", help="continue an interrupted run, recomputing only unfinished blocks")
    add_run_options(run)
    run.set_defaults(handler=command_run)
    # imported here, not at the top: these modules reuse this module's run options
    from geosal.archive.cli import add_submit_command
    from geosal.evaluation.cli import add_evaluate_command

    add_submit_command(commands)
    add_evaluate_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``geosal`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*No CUDA runtime is found.*")
    try:
        return args.handler(args)
    except USER_ERRORS as error:
        print(f"geosal: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geosal: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
