"""Plan one scene: everything that defines its result, decided once.

A :class:`ScenePlan` is small and picklable and holds exactly what determines
the output bytes: the scene and its selected bands, the working grid (the
scene resampled to the model's ground sample distance, or native), the
scene-wide intensity scaling, the model spec and its scale ends, the weights,
the statistic, the precision of the forward and the tile / block geometry. Its
:meth:`~ScenePlan.fingerprint` hashes all of it (plus the source file's
identity) so that a resumed run can only continue the same computation. How a
run executes (device, compilation, batch size, caches) is a
:class:`~geosal.pipeline.settings.RunSettings`; where it writes and under which
name is a :class:`~geosal.pipeline.job.SceneJob`.

Geometry, on the working grid of ``height x width`` pixels:

- tiles have a *core* of ``tile`` pixels and are read with ``halo`` more on
  every side; only the core of each tile's maps is kept, so every output pixel
  comes from exactly one tile (centre-crop stitching);
- blocks of ``block_tiles x block_tiles`` tiles are the unit of work; a block's
  core is ``block = tile * block_tiles`` pixels, and the Zarr chunks of every
  array are exactly one block core (``block / stride_k`` at scale k), so each
  block writes whole chunks that no other block touches;
- the combined map, LOVI and Fast-CAM lie on the *output grid*, the working
  grid downsampled by ``output_stride`` (the finest scale's stride by default:
  those layers hold no finer detail); a block core is ``block / output_stride``
  output pixels there, a whole number of COG tiles of ``cog_tile`` pixels.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import rasterio
import torch

from geosal.config import RunConfig
from geosal.errors import GeosalError
from geosal.models import ModelLoadError, ModelSpec, build_network_for, resolve_spec
from geosal.pipeline.limits import activation_bytes_per_pixel, check_scene_size, check_task_memory, task_memory
from geosal.pipeline.settings import batch_size_for
from geosal.raster import (
    BandScaling,
    RasterInputError,
    SceneInfo,
    WorkingGrid,
    bound_gdal_cache,
    inspect_scene,
    working_grid,
)
from geosal.raster.damaged import scaling_checked
from geosal.raster.objects import gdal_path, source_identity
from geosal.saliency import describe_scales
from geosal.saliency.combine import resolve_weights
from geosal.saliency.hooks import ScaleHooks
from geosal.saliency.statistics import Statistic, statistic_for_scales

PROBE_SIZE = 256
"""Side of the probe input that finds the scale ends and their strides (a
multiple of 32, the stride of the deepest common CNNs)."""
PREVIEW_SIDE = 1024
"""Longer side (working pixels / preview stride) the scene preview aims at."""


class PlanError(GeosalError, ValueError):
    """The scene and the configuration cannot work together (one clear line)."""


@dataclass(frozen=True)
class ScaleGrid:
    """One saliency scale: the scale-end module and its output stride in working pixels."""

    layer: str
    stride: int
    name: str


@dataclass(frozen=True)
class ScenePlan:
    """Everything that defines a scene's result. See the module docstring for the geometry.

    Attributes:
        scene: the source raster and its selected bands.
        grid: the working grid (pixels the model sees).
        scaling: scene-wide mapping of source values to uint8, and the nodata fill.
        spec: the model.
        scales: the scale ends and their strides, finest first.
        weights: Eq. 3's weight per scale.
        statistic: the per-location statistic (``smoe_scale``).
        precision: ``none`` (float32) or the autocast dtype of the forward (``bf16``, ``fp16``).
        tile, halo, block_tiles: the tiling, in working pixels and tiles.
        fast_cam_class: class index of the Fast-CAM layer, or None.
        output_stride: working pixels per output-grid pixel (1 or the finest scale's stride).
    """

    scene: SceneInfo
    grid: WorkingGrid
    scaling: BandScaling
    spec: ModelSpec
    scales: tuple[ScaleGrid, ...]
    weights: tuple[float, ...]
    statistic: str
    precision: str
    tile: int
    halo: int
    block_tiles: int
    fast_cam_class: int | None
    output_stride: int = 1

    @property
    def block(self) -> int:
        """Side of a block core in working pixels."""
        return self.tile * self.block_tiles

    @property
    def block_rows(self) -> int:
        return math.ceil(self.grid.height / self.block)

    @property
    def block_cols(self) -> int:
        return math.ceil(self.grid.width / self.block)

    @property
    def n_blocks(self) -> int:
        return self.block_rows * self.block_cols

    def block_origin(self, index: int) -> tuple[int, int]:
        """Top-left working pixel ``(row, col)`` of block ``index`` (row-major)."""
        return (index // self.block_cols) * self.block, (index % self.block_cols) * self.block

    @property
    def output_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the output grid: ``ceil(size / output_stride)``."""
        return math.ceil(self.grid.height / self.output_stride), math.ceil(self.grid.width / self.output_stride)

    @property
    def block_output(self) -> int:
        """Side of a block core on the output grid, in output pixels."""
        return self.block // self.output_stride

    @property
    def cog_tile(self) -> int:
        """Side of the COG tiles: the largest multiple of 16 up to 512 that divides :attr:`block_output`,
        so that every block owns whole tiles."""
        return max(t for t in range(16, 513, 16) if self.block_output % t == 0)

    @property
    def preview_stride(self) -> int:
        """Stride of the scene preview: the smallest power of two that brings the
        longer side of the working grid to :data:`PREVIEW_SIDE` or less, as long
        as it divides the block side (so every block writes whole chunks)."""
        stride = 1
        while max(self.grid.height, self.grid.width) > PREVIEW_SIDE * stride and self.block % (2 * stride) == 0:
            stride *= 2
        return stride

    @property
    def preview_bands(self) -> int:
        """Bands of the scene preview: the model's first three inputs (or its one)."""
        return min(3, len(self.scene.bands))

    def block_shape(self, index: int) -> tuple[int, int]:
        """Rows and columns of block ``index``'s core that lie inside the working grid."""
        row, col = self.block_origin(index)
        return min(self.block, self.grid.height - row), min(self.block, self.grid.width - col)

    def tiles_in_block(self, index: int) -> list[tuple[int, int]]:
        """Offsets ``(row, col)`` within the block of the tiles whose core touches the grid."""
        rows, cols = self.block_shape(index)
        return [(r, c) for r in range(0, rows, self.tile) for c in range(0, cols, self.tile)]

    @property
    def n_tiles(self) -> int:
        return sum(len(self.tiles_in_block(i)) for i in range(self.n_blocks))

    def scale_shape(self, scale: ScaleGrid) -> tuple[int, int]:
        """Shape of a scale's map over the whole working grid: ``ceil(size / stride)``."""
        return math.ceil(self.grid.height / scale.stride), math.ceil(self.grid.width / scale.stride)

    def fingerprint(self) -> str:
        """Hash of everything that determines the output (for safe resumption): the plan and the source's identity
        (a changed file must not be resumed: size and modification time of a local file; size, ETag and
        Last-Modified of a remote one, :func:`~geosal.raster.objects.source_identity`)."""
        source = [self.scene.path, *source_identity(self.scene.path)]
        record = {"plan": asdict(self), "source": source}
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def choose_bands(info: SceneInfo, requested: list[int] | None, spec: ModelSpec) -> tuple[tuple[int, ...], str | None]:
    """The bands to feed the model, and a note when the choice is not the obvious one.

    Raises:
        PlanError: the scene's bands cannot feed the model.
    """
    if requested is not None:
        bands = tuple(requested)
        note = None
    elif len(info.bands) == spec.input_bands:
        return info.bands, None
    elif len(info.bands) > spec.input_bands == 3:
        bands = info.bands[:3]
        note = (f"{len(info.bands)}-band scene: bands {list(bands)} feed the model's 3 inputs{_declared(spec)} "
                "(set input.bands to choose)")
    elif len(info.bands) == 1 and spec.input_bands == 3 and spec.single_band == "replicate":
        return info.bands, "single-band scene: the band is replicated to the model's 3 inputs"
    else:
        raise PlanError(
            f"{info.path}: {len(info.bands)} band(s) cannot feed a model with {spec.input_bands} inputs{_declared(spec)}; "
            f"set input.bands to {spec.input_bands} scene bands in the model's order, or for torchvision and timm weights "
            f"model.input_bands: {len(info.bands)} (their first convolution is adapted)"
        )
    if len(bands) == 1 and spec.input_bands == 3 and spec.single_band == "replicate":
        return bands, note or "one band selected: it is replicated to the model's 3 inputs"
    if len(bands) != spec.input_bands:
        raise PlanError(f"input.bands selects {len(bands)} band(s) but the model takes {spec.input_bands}{_declared(spec)}")
    if spec.band_names and requested is not None:
        note = f"scene bands {list(bands)} feed the model's inputs {', '.join(spec.band_names)} in this order"
    return bands, note


def _declared(spec: ModelSpec) -> str:
    """`` (B4, B3, B2)``: the model's declared band order, or nothing."""
    return f" ({', '.join(spec.band_names)})" if spec.band_names else ""


def target_gsd(info: SceneInfo, spec: ModelSpec, config: RunConfig) -> tuple[float | None, str | None]:
    """Ground sample distance to resample to (None: native), with a note."""
    scene_gsd = (info.gsd_m[0] * info.gsd_m[1]) ** 0.5
    mode = config.input.resample
    if mode == "native" or spec.gsd_m is None:
        return None, None if mode == "native" else "the model declares no ground sample distance: native resolution"
    ratio = spec.gsd_m / scene_gsd
    limit = config.input.max_resample_factor
    if mode == "auto" and not 1 / limit <= ratio <= limit:
        return None, (
            f"scene GSD {scene_gsd:.3g} m is more than {limit:g}x from the model's {spec.gsd_m} m: "
            "processed at native resolution (input.resample: model forces resampling)"
        )
    return spec.gsd_m, f"resampled from {scene_gsd:.3g} m to the model's {spec.gsd_m} m per pixel"


def scale_grids(spec: ModelSpec, config: RunConfig, probe_size: int) -> tuple[ScaleGrid, ...]:
    """Scale ends of the model and their strides, checked to tile exactly.

    Cached per (network, layers, probe size): an archive of thousands of
    scenes probes the network once.

    Raises:
        PlanError: the maps are not an exact ``1 / stride`` of the input (the
            network does not use "same" padding), a layer name is wrong, or the
            network's features are not spatial.
    """
    return _scale_probe(spec, config, probe_size)[0]


def _scale_probe(spec: ModelSpec, config: RunConfig, probe_size: int) -> tuple[tuple[ScaleGrid, ...], tuple[bool, ...]]:
    layers = config.saliency.layers
    return _scale_grids(spec.unpinned(), layers if layers == "auto" else tuple(layers), probe_size)


_MINIMUM = Statistic("minimum", "Min", lambda x: x.float().amin(dim=1))


@functools.lru_cache(maxsize=32)
def _scale_grids(spec: ModelSpec, requested: str | tuple[str, ...], probe_size: int) -> tuple[tuple[ScaleGrid, ...], tuple[bool, ...]]:
    """Grids and, per scale end, whether the probe's activation there was non-negative."""
    try:
        network = build_network_for(spec)
    except ModelLoadError as error:
        raise PlanError(str(error)) from None
    shape = (1, spec.input_bands, probe_size, probe_size)
    if requested == "auto":
        try:
            found = describe_scales(network, shape, decoder=spec.decoder == "include")
        except ValueError as error:
            raise PlanError(f"{spec.family} {spec.architecture}: {error}") from None
        except (RuntimeError, AssertionError) as error:  # the network itself refuses the probe input
            first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
            raise PlanError(f"{spec.family} {spec.architecture} fails on a {probe_size}x{probe_size} probe tile ({first}); "
                            "a network with a fixed input size needs it set through model.options") from None
        layers, sizes = [s.name for s in found], [(s.height, s.width) for s in found]
        non_negative = [s.non_negative for s in found]
    else:
        layers = list(requested)
        try:
            with ScaleHooks(network, layers, _MINIMUM) as hooks, torch.no_grad():
                network(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
        except ValueError as error:
            raise PlanError(f"saliency.layers: {error}") from None
        sizes = [tuple(m.shape[-2:]) for m in hooks.maps]
        non_negative = [bool(m.min() >= 0) for m in hooks.maps]
    grids = []
    for index, (layer, (h, w)) in enumerate(zip(layers, sizes), start=1):
        stride = probe_size // h
        if h * stride != probe_size or w * stride != probe_size:
            raise PlanError(
                f"layer {layer} gives {h}x{w} maps for {probe_size}x{probe_size} tiles: the scene pipeline needs maps "
                "that are exactly 1/stride of the input (CNNs with 'same' padding, such as ResNet, VGG, DenseNet)"
            )
        grids.append(ScaleGrid(layer=layer, stride=stride, name=f"scale_{index}"))
    return tuple(grids), tuple(non_negative)


def plan_scene(path: str | Path, config: RunConfig) -> tuple[ScenePlan, tuple[str, ...]]:
    """Inspect the scene and fix every decision that defines the result.

    Returns:
        The plan, and the notes worth telling the user (resampling, band choice, ...).

    Raises:
        RasterInputError: the scene cannot be read or is unsupported.
        ModelLoadError: the model cannot be resolved.
        PlanError: scene, model and configuration do not fit together.
        LimitError: the scene is larger than ``input.max_pixels``, or a task would need more memory than
            ``compute.max_task_memory_gib`` (:mod:`~geosal.pipeline.limits`).
    """
    spec = resolve_spec(config.model.name, **config.model.overrides())
    bound_gdal_cache(config.compute.gdal_cache_mb)
    info = inspect_scene(path, allow_missing_georeference=config.input.allow_missing_georeference)
    bands, band_note = choose_bands(info, config.input.bands, spec)
    info = inspect_scene(path, bands=list(bands), allow_missing_georeference=config.input.allow_missing_georeference)
    gsd, gsd_note = target_gsd(info, spec, config)
    grid = working_grid(info, gsd)
    check_scene_size(str(path), grid, config.tiling.tile, config.input.max_pixels)
    with rasterio.open(gdal_path(info.path)) as dataset:
        scaling = scaling_checked(dataset, info, config.input.low_percentile, config.input.high_percentile,
                                  config.input.skip_bad_blocks)

    tiling = config.tiling
    scales, non_negative = _scale_probe(spec, config, probe_size=PROBE_SIZE)
    statistic, statistic_note = statistic_for_scales(config.saliency.statistic, list(non_negative))
    stride = max(s.stride for s in scales)
    for key, value in (("tiling.tile", tiling.tile), ("tiling.halo", tiling.halo)):
        if value % stride:
            raise PlanError(f"{key} = {value} is not a multiple of the network's total stride {stride}")
    tile = min(tiling.tile, stride * math.ceil(max(grid.height, grid.width) / stride))
    weights = tuple(resolve_weights(config.saliency.weights, len(scales)))
    output_stride = scales[0].stride if config.output.grid == "finest-scale" else 1
    if any(s.stride % output_stride for s in scales):
        output_stride = 1  # scales that are not multiples of the finest one: the working grid is the common one
    batch_size = batch_size_for(config)
    block_tiles = block_tiles_for(tiling.block_tiles, batch_size, tile // output_stride)
    memory = task_memory(info, grid, tile, tiling.halo, block_tiles, batch_size,
                         activation_bytes_per_pixel(spec.unpinned()), spec.input_units == "source")
    check_task_memory(str(path), memory, tile, tiling.halo, block_tiles, batch_size, config.compute.max_task_memory_gib)
    notes = tuple(n for n in (band_note, gsd_note, statistic_note) if n)
    if tile < tiling.tile:
        notes += (f"scene smaller than a tile: tile reduced to {tile} px",)
    if block_tiles != tiling.block_tiles:
        notes += (f"blocks of {block_tiles} x {block_tiles} tiles (tiling.block_tiles {tiling.block_tiles}) so that a block "
                  f"fills a batch of {batch_size} and holds whole COG tiles",)
    plan = ScenePlan(
        scene=info,
        grid=grid,
        scaling=scaling,
        spec=spec,
        scales=scales,
        weights=weights,
        statistic=statistic,
        precision=config.compute.autocast,
        tile=tile,
        halo=tiling.halo,
        block_tiles=block_tiles,
        fast_cam_class=resolve_class(spec, config.saliency.fast_cam_class),
        output_stride=output_stride,
    )
    return plan, notes


def block_tiles_for(requested: int, batch_size: int, tile_output: int) -> int:
    """Tiles per block side: at least ``requested``, enough for one batch (``block_tiles^2 >= batch_size``,
    so batches never stay short of tiles), and a block core of a multiple of 16 output pixels
    (``tile_output`` per tile), the granularity of COG tiles."""
    block_tiles = max(requested, math.isqrt(batch_size - 1) + 1)
    step = 16 // math.gcd(16, tile_output)
    return -(-block_tiles // step) * step


def resolve_class(spec: ModelSpec, value: str | int | None) -> int | None:
    """Class index for Fast-CAM from a name or index (None: no Fast-CAM layer)."""
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdigit():
        index = int(value)
        if not 0 <= index < spec.num_classes:
            raise PlanError(f"saliency.fast_cam_class {index} is outside the model's {spec.num_classes} classes")
        return index
    if value not in spec.classes:
        raise PlanError(f"saliency.fast_cam_class {value!r} is not a class of the model ({', '.join(spec.classes[:8])}, ...)")
    return spec.classes.index(value)


__all__ = ["PlanError", "RasterInputError", "ScaleGrid", "ScenePlan", "plan_scene"]
