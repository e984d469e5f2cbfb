"""Pass 1 of a scene, one block at a time: tiles through the network, raw maps to Zarr.

:func:`run_block` is a pure function of the scene job and a block index (plus
the runner its executor hands it): it reads the block's window with its halo,
runs the tiles, keeps the core of every tile's maps, writes them as whole
chunks, and returns the block's valid-pixel statistics per scale. Rerunning a
block rewrites the same bytes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import rasterio

from geosal.pipeline.bad_blocks import record_bad_blocks
from geosal.pipeline.job import SceneJob
from geosal.pipeline.memory import release_freed_memory
from geosal.pipeline.runner import TileRunner
from geosal.raster import bound_gdal_cache, mark_block_done, to_uint8, write_region
from geosal.raster.damaged import SourceBlock, read_window_checked
from geosal.raster.gdal_cache import bytes_per_pixel, window_cache_bytes
from geosal.raster.objects import gdal_path
from geosal.raster.source import MAX_READ_BYTES
from geosal.raster.store import CAM, PREVIEW, VALID


class BlockInput(NamedTuple):
    """A block's core plus halo, ``[S, S, ...]`` with ``S = block + 2 halo``.

    Attributes:
        pixels: ``uint8`` ``[S, S, bands]``: the scene-wide stretch, invalid pixels (nodata and the halo
            beyond the scene's edges) set to the scene's band means (:attr:`BandScaling.fill`), so collars and
            edges look neutral to the network; the preview is drawn from it.
        valid: bool ``[S, S]``: the source pixel is valid data.
        model_input: ``pixels``, or for a model that takes the scene's own values (``input_units="source"``)
            ``float32`` ``[S, S, bands]`` source values with the same filling.
        bad_blocks: the unreadable source blocks read around as nodata (``skip_bad_blocks``; empty otherwise).
    """

    pixels: np.ndarray
    valid: np.ndarray
    model_input: np.ndarray
    bad_blocks: tuple[SourceBlock, ...] = ()


def read_block_input(job: SceneJob, index: int) -> BlockInput:
    """Read block ``index``'s core plus halo on the working grid (see :class:`BlockInput`).

    Raises:
        UnreadableBlockError: a source block under the window cannot be read (and ``skip_bad_blocks`` is off).
    """
    plan = job.plan
    row, col = plan.block_origin(index)
    size = plan.block + 2 * plan.halo
    bound_gdal_cache(job.settings.gdal_cache_mb, read_cache_bytes(job))
    with rasterio.open(gdal_path(plan.scene.path)) as dataset:
        data, valid, bad = read_window_checked(dataset, plan.scene, plan.grid, row - plan.halo, col - plan.halo, size, size,
                                               skip_bad_blocks=job.settings.skip_bad_blocks)
    invalid = ~valid
    pixels = to_uint8(data, plan.scaling)
    if invalid.any():
        pixels = pixels.copy() if pixels is data else pixels
        pixels[:, invalid] = np.asarray(plan.scaling.fill, np.uint8)[:, None]
    pixels = np.moveaxis(pixels, 0, -1)
    if plan.spec.input_units != "source":
        return BlockInput(pixels, valid, pixels, bad)
    source = data.astype(np.float32)
    source[:, invalid] = np.asarray(plan.scaling.mean, np.float32)[:, None]
    return BlockInput(pixels, valid, np.moveaxis(source, 0, -1), bad)


def read_cache_bytes(job: SceneJob) -> int:
    """GDAL block cache the block reads of ``job`` need (see :func:`~geosal.raster.gdal_cache.window_cache_bytes`)."""
    plan, info = job.plan, job.plan.scene
    size = plan.block + 2 * plan.halo
    window = (size * plan.grid.scale_y, size * plan.grid.scale_x)
    pixel = bytes_per_pixel(info.dtype, len(info.bands))
    band_rows = window[0] if plan.grid.is_native else MAX_READ_BYTES / (window[1] * pixel)
    return window_cache_bytes((info.height, info.width), info.block_shape, window, band_rows, pixel)


def footprint_any_all(valid: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """For each ``stride x stride`` footprint of ``valid`` ``[H, W]`` (multiples of
    stride): whether any and whether all of its pixels are valid."""
    h, w = valid.shape
    blocks = valid.reshape(h // stride, stride, w // stride, stride)
    return blocks.any(axis=(1, 3)), blocks.all(axis=(1, 3))


def run_block(job: SceneJob, index: int, runner: TileRunner) -> np.ndarray:
    """Process block ``index`` with ``runner`` (the job's model) and mark it done (recording the source blocks
    read around as nodata, if any: :mod:`~geosal.pipeline.bad_blocks`).

    Returns:
        ``float64`` ``[n_maps, 3]``: count, sum and sum of squares of the raw
        values whose footprint is entirely valid, per scale (then the CAM when
        the plan has a Fast-CAM class).
    """
    plan, store, batch_size = job.plan, job.store, job.settings.batch_size
    pixels, valid, model_input, bad_blocks = read_block_input(job, index)
    record_bad_blocks(job, index, bad_blocks)
    halo, tile, block = plan.halo, plan.tile, plan.block
    offsets = plan.tiles_in_block(index)
    span = tile + 2 * halo
    blocks = [np.full((block // s.stride, block // s.stride), np.nan, np.float32) for s in plan.scales]
    cam_stride = plan.scales[-1].stride
    cam_block = np.full((block // cam_stride, block // cam_stride), np.nan, np.float32)
    for first in range(0, len(offsets), batch_size):
        batch = offsets[first : first + batch_size]
        tiles = np.stack([model_input[r : r + span, c : c + span] for r, c in batch])
        if job.settings.compile:
            tiles = pad_batch(tiles, batch_size)
        if plan.fast_cam_class is None:
            maps = runner.raw_maps(tiles)
        else:
            maps, cam = runner.raw_maps_and_cam(tiles, plan.fast_cam_class)
            _place(cam_block, cam, batch, cam_stride, halo, tile)
        for target, scale_maps, scale in zip(blocks, maps, plan.scales):
            _place(target, scale_maps, batch, scale.stride, halo, tile)

    core_valid = valid[halo : halo + block, halo : halo + block]
    rows, cols = plan.block_shape(index)
    row, col = plan.block_origin(index)
    stats = []
    arrays = [(s.name, s.stride, b) for s, b in zip(plan.scales, blocks)]
    if plan.fast_cam_class is not None:
        arrays.append((CAM, cam_stride, cam_block))
    for name, stride, values in arrays:
        any_valid, all_valid = footprint_any_all(core_valid, stride)
        values = np.where(any_valid, values, np.nan)
        kept = values[all_valid & np.isfinite(values)].astype(np.float64)
        stats.append((kept.size, kept.sum(), np.square(kept).sum()))
        out_rows, out_cols = -(-rows // stride), -(-cols // stride)
        write_region(store, name, row // stride, col // stride, values[:out_rows, :out_cols])
    write_region(store, VALID, row, col, core_valid[:rows, :cols].astype(np.uint8))
    stride = plan.preview_stride
    preview = block_mean(pixels[halo : halo + block, halo : halo + block, : plan.preview_bands], stride)
    write_region(store, PREVIEW, row // stride, col // stride, preview[:, : -(-rows // stride), : -(-cols // stride)])
    stats = np.asarray(stats, dtype=np.float64)
    mark_block_done(store, index, stats)
    release_freed_memory()
    return stats


def block_mean(pixels: np.ndarray, stride: int) -> np.ndarray:
    """``uint8`` ``[H, W, bands]`` (H, W multiples of ``stride``) averaged over
    ``stride x stride`` footprints and rounded: ``uint8`` ``[bands, H / stride, W / stride]``."""
    h, w, bands = pixels.shape
    footprints = pixels.reshape(h // stride, stride, w // stride, stride, bands)
    return np.rint(footprints.mean(axis=(1, 3), dtype=np.float32)).astype(np.uint8).transpose(2, 0, 1)


def pad_batch(tiles: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last tile up to the next power of two (at most ``size``) tiles, so a compiled model sees a
    few static batch shapes (not one per remainder) and never pads a short batch to the full batch size."""
    target = min(size, 1 << (len(tiles) - 1).bit_length())
    if len(tiles) == target:
        return tiles
    return np.concatenate([tiles, np.repeat(tiles[-1:], target - len(tiles), axis=0)])


def _place(target: np.ndarray, maps: np.ndarray, offsets, stride: int, halo: int, tile: int) -> None:
    """Copy the core of each tile's map (``halo / stride`` cropped on every side) into the block array."""
    crop, core = halo // stride, tile // stride
    for tile_map, (r, c) in zip(maps, offsets):
        target[r // stride : r // stride + core, c // stride : c // stride + core] = tile_map[crop : crop + core, crop : crop + core]
