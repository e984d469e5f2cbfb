"""Options shared by ``geosal run`` and ``geosal submit``, and the config they make.

Every option overrides the same key of the YAML file given with ``--config``;
validation (types, ranges, names) is the configuration's own
(:mod:`geosal.config`), so the command line and a file are checked alike.
"""

from __future__ import annotations

import argparse
import math

import yaml

from geosal.config import ConfigError, RunConfig, load_config


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Add the ``--config`` file and every run option to ``parser``."""
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (see configs/); options below override it")
    model = parser.add_argument_group("model")
    model.add_argument("--model", metavar="NAME_OR_PATH",
                       help="ucmerced-resnet18 (default, shipped), a torchvision name such as resnet50:IMAGENET1K_V2, "
                            "timm:convnext_tiny, TorchGeo weights such as ResNet50_Weights.SENTINEL2_ALL_MOCO, or a checkpoint "
                            "file (see docs/models.md)")
    model.add_argument("--architecture",
                       help="architecture of a plain state-dict checkpoint, e.g. resnet50, timm:convnext_tiny, smp:Unet, "
                            "torchgeo:resnet50")
    model.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                       help="build the network with package.module:function (keyword arguments: --model-option) and load "
                            "--model into it")
    model.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                       help="keyword argument of the model builder or factory (value read as YAML), repeatable")
    model.add_argument("--gsd", type=float, metavar="METRES", help="ground sample distance the model was trained at (overrides its spec)")
    saliency = parser.add_argument_group("saliency")
    saliency.add_argument("--statistic", help="per-location statistic (default smoe_scale; also std, mean, max, shannon_entropy, ...)")
    saliency.add_argument("--weights", help="layer weights of the combined map: equal, linear, prior, or a comma list such as 1,2,3,4,5")
    saliency.add_argument("--layers", help="comma-separated scale-end module names (default: found automatically)")
    saliency.add_argument("--fast-cam-class", metavar="CLASS",
                          help="also write fast_cam.tif: SMOE x Grad-CAM for this class (name or index)")
    tiling = parser.add_argument_group("tiling (pixels of the working grid; multiples of the network stride)")
    tiling.add_argument("--tile", type=int, help="tile core size (default 512)")
    tiling.add_argument("--halo", type=int, help="context read around each tile and cropped away (default 64)")
    tiling.add_argument("--block-tiles", type=int, help="tiles per block side; a block is one task (default 2, grown to fit a batch)")
    tiling.add_argument("--batch-size", type=int, help="tiles per forward pass (default 1 on a CPU, 16 on a GPU)")
    source = parser.add_argument_group("input")
    source.add_argument("--bands", help="1-based bands to feed the model, e.g. 1,2,3 (default: all, or the first 3 of RGBN)")
    source.add_argument("--resample", choices=["auto", "model", "native"],
                        help="resample to the model's ground sample distance: auto (when within 8x), model (always), native (never)")
    source.add_argument("--allow-missing-georeference", action="store_true", default=None,
                        help="accept rasters without a geotransform or CRS (outputs then have pixel coordinates)")
    source.add_argument("--skip-bad-blocks", action="store_true", default=None,
                        help="write source blocks that cannot be read (truncated or corrupt) as nodata, listed in item.json, "
                             "instead of failing")
    source.add_argument("--max-pixels", type=float, metavar="N",
                        help="largest working grid accepted, in pixels after resampling (default 1e10)")
    storage = parser.add_argument_group("remote storage (credentials and endpoint: the standard AWS_* environment)")
    storage.add_argument("--no-sign-request", action="store_true", default=None,
                         help="unsigned requests to s3:// (public buckets; also AWS_NO_SIGN_REQUEST=YES)")
    storage.add_argument("--retries", type=int, metavar="N",
                         help="retries of a request that failed transiently (HTTP 429/5xx, timeouts), with backoff (default 5)")
    compute = parser.add_argument_group("compute")
    compute.add_argument("--scheduler", metavar="ADDRESS",
                         help="use a running Dask scheduler (tcp://host:8786); 'in-process' runs without Dask; "
                              "default: start a local cluster")
    compute.add_argument("--processes", action="store_true", default=None,
                         help="the local cluster's workers as processes (default: threads of this process, which start at once)")
    compute.add_argument("--workers", type=int, help="workers of the local cluster")
    compute.add_argument("--threads-per-worker", type=int, help="threads per local worker (torch uses them in a forward pass)")
    compute.add_argument("--memory-limit", help="memory limit per local worker, e.g. 4GiB (default auto)")
    compute.add_argument("--device", help="cpu, cuda, cuda:1 or auto (default: cuda when available)")
    compute.add_argument("--gpu", action="store_true", default=None,
                         help="run the network on the GPU: pass-1 tasks ask for the GPU worker resource (implies --device cuda)")
    compute.add_argument("--gpu-slots", type=int, help="pass-1 tasks sharing the GPU of a local cluster's worker (default 2)")
    compute.add_argument("--autocast", choices=["none", "tf32", "bf16", "fp16"],
                         help="precision of the forward on a GPU (statistics stay float32)")
    compute.add_argument("--compile", action="store_true", default=None,
                         help="torch.compile the network with the statistics inside (faster after a one-off compilation)")
    compute.add_argument("--worker-wait", type=float, metavar="SECONDS",
                         help="when no Dask worker is left, wait this long for one to join before failing (default 300)")
    compute.add_argument("--max-task-memory", type=float, metavar="GIB",
                         help="refuse tiling sizes whose pass-1 task would need more memory than this, in GiB (default 32)")


def _split(value: str | None, cast=str) -> list | None:
    return None if value is None else [cast(v) for v in value.split(",") if v.strip()]


def _weights(value: str | None) -> str | list[float] | None:
    if value is None or value in ("equal", "linear", "prior"):
        return value
    try:
        return _split(value, float)
    except ValueError:
        return value  # the configuration names the bad value


def _whole(value: float | None) -> int | float | None:
    """``1e11`` as the integer it means (a fraction stays a float, which the configuration then refuses)."""
    return int(value) if value is not None and math.isfinite(value) and value == int(value) else value


def _options(values: list[str] | None) -> dict | None:
    """``KEY=VALUE`` items as a dict, each value read as YAML (``depth=18``, ``pretrained=false``)."""
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
    """The ``--config`` file (or the defaults) with every option given on the command line applied.

    Raises:
        ConfigError: the file or an option is invalid (one line naming the key).
    """
    overrides = {
        "model": {"name": args.model, "architecture": args.architecture, "gsd_m": args.gsd,
                  "factory": args.model_factory, "options": _options(args.model_option)},
        "saliency": {"statistic": args.statistic, "weights": _weights(args.weights), "layers": _split(args.layers),
                     "fast_cam_class": args.fast_cam_class},
        "tiling": {"tile": args.tile, "halo": args.halo, "block_tiles": args.block_tiles, "batch_size": args.batch_size},
        "input": {"bands": _split(args.bands), "resample": args.resample,
                  "allow_missing_georeference": args.allow_missing_georeference, "skip_bad_blocks": args.skip_bad_blocks,
                  "max_pixels": _whole(args.max_pixels)},
        "compute": {"scheduler": args.scheduler, "processes": args.processes, "workers": args.workers,
                    "threads_per_worker": args.threads_per_worker, "memory_limit": args.memory_limit, "device": args.device,
                    "gpu": args.gpu, "gpu_slots": args.gpu_slots, "autocast": args.autocast, "compile": args.compile,
                    "worker_wait_s": args.worker_wait, "max_task_memory_gib": args.max_task_memory},
        "archive": {"asset": getattr(args, "asset", None), "max_scenes_in_flight": getattr(args, "max_scenes_in_flight", None)},
        "storage": {"unsigned": args.no_sign_request, "retries": args.retries},
    }
    return load_config(args.config, overrides)


def configure_storage(config: RunConfig) -> None:
    """Resolve this process's storage access from the AWS environment and ``config.storage`` and apply it (the
    workers get it from the Dask executor).

    Raises:
        StorageConfigError: the environment names a profile that does not exist, or an endpoint that is not a URL.
    """
    from geosal.raster.credentials import StorageAccess, apply

    storage = config.storage
    apply(StorageAccess.from_environment(unsigned=storage.unsigned or None, retries=storage.retries,
                                         retry_delay_s=storage.retry_delay_s, timeout_s=storage.timeout_s))
