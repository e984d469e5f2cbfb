"""Typed configuration of a geosal run, loaded from YAML (see ``configs/``).

Every section rejects unknown keys, and every error names the offending key,
so a typo in a config file is one clear line, not a silently ignored option.
Command-line options override the file (:func:`load_config` ``overrides``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from geosal.errors import GeosalError
from geosal.saliency.catalog import STATISTIC_NAMES


class ConfigError(GeosalError, ValueError):
    """An invalid configuration file or value; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    """Which network explains the imagery.

    ``name``: the shipped model (``ucmerced-resnet18``), a torchvision
    ``architecture[:weights]``, ``timm:NAME``, TorchGeo weights
    (``ResNet50_Weights.SENTINEL2_ALL_MOCO``) or a checkpoint path; the other
    fields override the model's spec (needed for plain state dicts:
    ``architecture``, such as ``resnet50`` or ``timm:convnext_tiny``, or
    ``factory``; for models trained at a known resolution: ``gsd_m``).
    ``factory``: ``package.module:function`` returning an ``nn.Module``, called
    with ``options`` as keyword arguments (``options`` also go to timm,
    TorchGeo and segmentation builders). ``band_names``: the bands the model
    expects, in order. ``decoder``: ``ignore`` (explain a segmentation network's
    encoder) or ``include`` (its decoder's stages). ``input_units``:
    ``stretched`` (the scene stretched to 0..255) or ``source`` (the scene's own
    values). See docs/models.md.
    """

    name: str = "ucmerced-resnet18"
    architecture: str | None = None
    factory: str | None = None
    options: dict[str, Any] | None = None
    band_names: tuple[str, ...] | None = None
    decoder: Literal["ignore", "include"] | None = None
    input_units: Literal["stretched", "source"] | None = None
    pixel_scale: float | None = Field(default=None, gt=0)
    num_classes: int | None = Field(default=None, gt=0)
    input_bands: int | None = Field(default=None, gt=0)
    gsd_m: float | None = Field(default=None, gt=0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def overrides(self) -> dict[str, Any]:
        """The spec overrides that are set."""
        return {k: v for k, v in self.model_dump(exclude={"name"}).items() if v is not None}


class SaliencyConfig(_Section):
    """How maps are computed and combined (see :class:`geosal.saliency.SaliencyMaps`)."""

    statistic: str = "smoe_scale"
    weights: Literal["equal", "linear", "prior"] | list[float] = "equal"
    layers: Literal["auto"] | list[str] = "auto"
    fast_cam_class: str | int | None = None

    @field_validator("statistic")
    @classmethod
    def _known_statistic(cls, value: str) -> str:
        if value not in STATISTIC_NAMES:
            raise ValueError(f"unknown statistic {value!r}; choose one of: {', '.join(STATISTIC_NAMES)}")
        if STATISTIC_NAMES[value].pre_activation:
            raise ValueError(f"{value} needs pre-activation tensors, which the scene pipeline does not capture")
        return value


class TilingConfig(_Section):
    """Tiles of ``tile`` pixels with a ``halo`` on every side, in blocks of
    ``block_tiles`` x ``block_tiles`` tiles (the unit of work). ``tile`` and
    ``halo`` must be multiples of the network's total stride (32 for ResNets).
    ``batch_size``: tiles per forward pass; ``None``: 1 on a CPU (a 640 px
    tile already fills the cores, larger batches are no faster per tile and
    hold more activations), 16 on a GPU."""

    tile: int = Field(default=512, gt=0)
    halo: int = Field(default=64, ge=0)
    block_tiles: int = Field(default=2, gt=0)
    batch_size: int | None = Field(default=None, gt=0)


class InputConfig(_Section):
    """How the scene is read.

    ``bands``: 1-based band indexes fed to the model (default: every data
    band, or the first three of a four-band RGBN scene for a 3-band model).
    ``resample``: ``auto`` resamples to the model's ground sample distance
    when the scene is within a factor of ``max_resample_factor`` of it,
    ``model`` always does, ``native`` never does.
    ``max_pixels``: the largest working grid (pixels, after resampling) a run
    accepts; a scene that declares more is refused before anything starts.
    ``skip_bad_blocks``: a source block that cannot be read (truncated or
    corrupt) is written as nodata, and listed in the STAC Item and the archive
    summary, instead of failing the run.
    """

    bands: list[int] | None = None
    resample: Literal["auto", "model", "native"] = "auto"
    max_resample_factor: float = Field(default=8.0, ge=1.0)
    low_percentile: float = Field(default=2.0, ge=0, lt=50)
    high_percentile: float = Field(default=98.0, gt=50, le=100)
    allow_missing_georeference: bool = False
    max_pixels: int = Field(default=10**10, gt=0)
    skip_bad_blocks: bool = False

    @field_validator("bands")
    @classmethod
    def _positive_bands(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(b < 1 for b in value)):
            raise ValueError("band indexes are 1-based and there must be at least one")
        return value


class ComputeConfig(_Section):
    """Where the work runs. ``scheduler``: ``None`` starts a local Dask
    cluster, ``"tcp://host:8786"`` uses an existing one, ``"in-process"`` runs
    without Dask. ``processes``: the local cluster's workers are separate
    processes (isolated; each loads the model) instead of threads of this
    process (the default: it starts in a fraction of a second, and torch, GDAL
    and the codecs release the GIL). ``gpu``: pass-1 tasks ask for the ``GPU``
    worker resource; a local cluster offers ``gpu_slots`` of it, so that many
    blocks share the GPU (one reads while another computes). ``compile``: trace
    and ``torch.compile`` the network with the statistics inside (fastest on
    CPU once compiled). ``autocast``: the precision of the forward on a GPU:
    ``none`` (float32, TF32 off), ``tf32`` (TensorFloat-32 convolutions),
    ``bf16`` or ``fp16`` autocast; the statistics are float32 in every case. ``gdal_cache_mb``: GDAL's block cache per process, in
    MiB (GDAL's default, 5 % of RAM, would grow with the scene). ``worker_wait_s``: when no worker that can
    run the tasks is left, how long a run waits for one to join before it fails (its partial output is kept
    for ``--resume``). ``max_task_memory_gib``: the largest memory one task may need by the plan's estimate
    (tile, halo, block and batch sizes against the network's activations); a larger configuration is refused
    before anything starts."""

    scheduler: str | None = None
    processes: bool = False
    workers: int | None = Field(default=None, gt=0)
    threads_per_worker: int | None = Field(default=None, gt=0)
    memory_limit: str = "auto"
    device: str = "auto"
    gpu: bool = False
    gpu_slots: int = Field(default=2, gt=0)
    autocast: Literal["none", "tf32", "bf16", "fp16"] = "none"
    compile: bool = False
    gdal_cache_mb: int = Field(default=256, gt=0)
    worker_wait_s: float = Field(default=300.0, ge=0)
    max_task_memory_gib: float = Field(default=32.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _gpu_means_cuda(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("gpu") and data.get("device", "auto") == "auto":
            return {**data, "device": "cuda"}
        return data

    @model_validator(mode="after")
    def _gpu_needs_cuda(self) -> ComputeConfig:
        if self.gpu and not self.device.startswith("cuda"):
            raise ValueError(f"gpu: true runs the network on a GPU, but device is {self.device!r} (use cuda, cuda:N or auto)")
        return self

    @property
    def uses_gpu(self) -> bool:
        """Whether pass-1 tasks need a GPU worker (``gpu``, or a CUDA device asked for by name)."""
        return self.gpu or self.device.startswith("cuda")


class OutputConfig(_Section):
    """What is written besides the raw maps of ``saliency.zarr``, and how.

    ``grid``: the grid of the combined map, LOVI and Fast-CAM: ``finest-scale``
    (the grid of the finest saliency scale, stride 2 for ResNets: those layers
    hold no finer detail, and a quarter of the pixels) or ``working`` (every
    working pixel).
    """

    cog: bool = True
    quicklook: bool = True
    stac: bool = True
    grid: Literal["finest-scale", "working"] = "finest-scale"


class ArchiveConfig(_Section):
    """How ``geosal submit`` runs an archive of scenes.

    ``max_scenes_in_flight``: scenes executed at once on the cluster (each
    already caps its own block tasks in flight, so memory on the client and
    scheduler is bounded by scenes x tasks in flight); ignored with the
    ``in-process`` scheduler, which runs one scene at a time.
    ``asset``: key of the STAC asset to process in each Item (default: the
    first asset with role ``data`` or a GeoTIFF media type, else ``image`` or
    ``visual``).
    """

    max_scenes_in_flight: int = Field(default=2, gt=0)
    asset: str | None = None

    @field_validator("asset")
    @classmethod
    def _non_empty_asset(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("asset must be a non-empty STAC asset key")
        return value


class StorageConfig(_Section):
    """Remote inputs and outputs (``https://`` and ``s3://`` scenes, catalogs and output folders).

    Endpoint, region and credentials come from the standard AWS environment
    (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
    ``AWS_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``), never from this
    file, so that no secret is written into an output's ``config.yaml``.
    ``unsigned``: send unsigned requests (public buckets; also
    ``AWS_NO_SIGN_REQUEST=YES``). ``retries``: retries of a request that failed
    transiently (HTTP 429 and 5xx, timeouts, dropped connections), after
    ``retry_delay_s`` seconds, doubled for each next one; ``timeout_s``: the
    limit of one request. A missing object or a refused request (HTTP 404, 403)
    is never retried.
    """

    unsigned: bool = False
    retries: int = Field(default=5, ge=0, le=20)
    retry_delay_s: float = Field(default=0.5, ge=0, le=60)
    timeout_s: float = Field(default=60.0, gt=0)


class RunConfig(_Section):
    """A whole run: one YAML file, every section optional."""

    model: ModelConfig = ModelConfig()
    saliency: SaliencyConfig = SaliencyConfig()
    tiling: TilingConfig = TilingConfig()
    input: InputConfig = InputConfig()
    compute: ComputeConfig = ComputeConfig()
    output: OutputConfig = OutputConfig()
    archive: ArchiveConfig = ArchiveConfig()
    storage: StorageConfig = StorageConfig()

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> RunConfig:
        if self.input.low_percentile >= self.input.high_percentile:
            raise ValueError("input.low_percentile must be below input.high_percentile")
        return self


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{key}: {message}" + (f" (got {first['input']!r})" if "input" in first and not isinstance(first["input"], dict) else "")


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Read a YAML config (or the defaults when ``path`` is None) and apply overrides.

    Args:
        path: YAML file with any of the sections of :class:`RunConfig`.
        overrides: nested dict of values that win over the file, for example
            ``{"tiling": {"tile": 448}}`` (``None`` leaves are ignored).

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown key or invalid value,
            in one line that names the file and the key.
    """
    source = "defaults"
    data: dict = {}
    if path is not None:
        source = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    data = _merge(data, _drop_none(overrides or {}))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error)}") from None


def _drop_none(values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out
