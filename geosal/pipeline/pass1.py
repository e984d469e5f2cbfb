"""Pass 1 of a scene, one block at a time: tiles through the network, raw maps to Zarr.

:func:`run_block` is a pure function of the plan and a block index (plus the
per-process model): it reads the block's window with its halo, runs the tiles,
keeps the core of every tile's maps, writes them as whole chunks, and returns
the block's valid-pixel statistics per scale. Rerunning a block rewrites the
same bytes.
"""

from __future__ import annotations

import numpy as np
import rasterio

from geosal.pipeline.plan import ScenePlan
from geosal.pipeline.runner import RunnerKey, tile_runner
from geosal.raster import bound_gdal_cache, mark_block_done, read_window, to_uint8, write_region

CAM_ARRAY = "cam"
PREVIEW_ARRAY = "preview"


def runner_key(plan: ScenePlan) -> RunnerKey:
    return RunnerKey(plan.spec, tuple(s.layer for s in plan.scales), plan.statistic, plan.device, plan.autocast, plan.compile)


def read_block_pixels(plan: ScenePlan, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The block's core plus halo, stretched to ``uint8`` (see :func:`read_block_input`)."""
    pixels, valid, _ = read_block_input(plan, index)
    return pixels, valid


def read_block_input(plan: ScenePlan, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block's core plus halo as preview pixels and as model input.

    Returns:
        ``pixels``: ``uint8`` ``[block + 2 halo, block + 2 halo, bands]`` (scene-wide
        scaling; invalid pixels filled with the scene's band means so collars and
        edges look neutral to the network); ``valid``: bool of the same size;
        ``model_input``: ``pixels`` for a model on the stretched scale, or ``float32``
        source values (same filling) for a model whose spec says ``input_units="source"``.
    """
    row, col = plan.block_origin(index)
    size = plan.block + 2 * plan.halo
    bound_gdal_cache(plan.gdal_cache_mb)
    with rasterio.open(plan.scene.path) as dataset:
        data, valid = read_window(dataset, plan.scene, plan.grid, row - plan.halo, col - plan.halo, size, size)
    data = data.astype(np.float64, copy=False)
    means = np.asarray(plan.scaling.mean, dtype=np.float64).reshape(-1, 1, 1)
    data = np.where(valid[None], data, means)
    pixels = np.moveaxis(to_uint8(data, plan.scaling), 0, -1)
    if plan.spec.input_units == "source":
        return pixels, valid, np.moveaxis(data.astype(np.float32), 0, -1)
    return pixels, valid, pixels


def footprint_any_all(valid: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """For each ``stride x stride`` footprint of ``valid`` ``[H, W]`` (multiples of
    stride): whether any and whether all of its pixels are valid."""
    h, w = valid.shape
    blocks = valid.reshape(h // stride, stride, w // stride, stride)
    return blocks.any(axis=(1, 3)), blocks.all(axis=(1, 3))


def run_block(plan: ScenePlan, index: int) -> np.ndarray:
    """Process block ``index`` and mark it done.

    Returns:
        ``float64`` ``[n_maps, 3]``: count, sum and sum of squares of the raw
        values whose footprint is entirely valid, per scale (then the CAM when
        the plan has a Fast-CAM class).
    """
    pixels, valid, model_input = read_block_input(plan, index)
    halo, tile, block = plan.halo, plan.tile, plan.block
    offsets = plan.tiles_in_block(index)
    span = tile + 2 * halo
    runner = tile_runner(runner_key(plan))
    blocks = [np.full((block // s.stride, block // s.stride), np.nan, np.float32) for s in plan.scales]
    cam_stride = plan.scales[-1].stride
    cam_block = np.full((block // cam_stride, block // cam_stride), np.nan, np.float32)
    for first in range(0, len(offsets), plan.batch_size):
        batch = offsets[first : first + plan.batch_size]
        tiles = np.stack([model_input[r : r + span, c : c + span] for r, c in batch])
        padded = _pad_batch(tiles, plan.batch_size) if plan.compile else tiles
        if plan.fast_cam_class is None:
            maps = runner.raw_maps(padded)
        else:
            maps, cam = runner.raw_maps_and_cam(padded, plan.fast_cam_class)
            _place(cam_block, cam, batch, cam_stride, halo, tile)
        for target, scale_maps, scale in zip(blocks, maps, plan.scales):
            _place(target, scale_maps, batch, scale.stride, halo, tile)

    core_valid = valid[halo : halo + block, halo : halo + block]
    rows, cols = plan.block_shape(index)
    row, col = plan.block_origin(index)
    stats = []
    arrays = [(s.name, s.stride, b) for s, b in zip(plan.scales, blocks)]
    if plan.fast_cam_class is not None:
        arrays.append((CAM_ARRAY, cam_stride, cam_block))
    for name, stride, values in arrays:
        any_valid, all_valid = footprint_any_all(core_valid, stride)
        values = np.where(any_valid, values, np.nan)
        kept = values[all_valid & np.isfinite(values)].astype(np.float64)
        stats.append((kept.size, kept.sum(), np.square(kept).sum()))
        out_rows, out_cols = -(-rows // stride), -(-cols // stride)
        write_region(plan.store_path, name, row // stride, col // stride, values[:out_rows, :out_cols])
    write_region(plan.store_path, "valid", row, col, core_valid[:rows, :cols].astype(np.uint8))
    stride = plan.preview_stride
    preview = block_mean(pixels[halo : halo + block, halo : halo + block, : plan.preview_bands], stride)
    write_region(plan.store_path, PREVIEW_ARRAY, row // stride, col // stride,
                 preview[:, : -(-rows // stride), : -(-cols // stride)])
    stats = np.asarray(stats, dtype=np.float64)
    mark_block_done(plan.store_path, index, stats)
    return stats


def block_mean(pixels: np.ndarray, stride: int) -> np.ndarray:
    """``uint8`` ``[H, W, bands]`` (H, W multiples of ``stride``) averaged over
    ``stride x stride`` footprints and rounded: ``uint8`` ``[bands, H / stride, W / stride]``."""
    h, w, bands = pixels.shape
    footprints = pixels.reshape(h // stride, stride, w // stride, stride, bands)
    return np.rint(footprints.mean(axis=(1, 3), dtype=np.float32)).astype(np.uint8).transpose(2, 0, 1)


def _pad_batch(tiles: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last tile so every batch has ``size`` tiles (static shapes for a compiled model)."""
    if len(tiles) == size:
        return tiles
    return np.concatenate([tiles, np.repeat(tiles[-1:], size - len(tiles), axis=0)])


def _place(target: np.ndarray, maps: np.ndarray, offsets, stride: int, halo: int, tile: int) -> None:
    """Copy the core of each tile's map (``halo / stride`` cropped on every side) into the block array."""
    crop, core = halo // stride, tile // stride
    for tile_map, (r, c) in zip(maps, offsets):
        target[r // stride : r // stride + core, c // stride : c // stride + core] = tile_map[crop : crop + core, crop : crop + core]
