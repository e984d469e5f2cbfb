"""Pass 2 of a scene, one block at a time: normalise, upsample, combine, render, encode.

Each block reads the raw maps that cover its core plus a one-pixel margin,
squashes them with the *scene-wide* statistics of pass 1 (so every block uses
the same normalisation), upsamples them bilinearly on the global grid onto the
output grid and combines them with the weights of Eq. 3. The upsampling from a
scale of stride ``s_k`` to the output grid of stride ``s_out`` is exactly
``F.interpolate(whole_map, scale_factor=s_k / s_out, mode="bilinear", align_corners=False)``
restricted to the block, so block borders cannot show.

Nodata is handled by normalised convolution: map pixels whose footprint is
all nodata carry weight 0, and each output pixel is the weighted bilinear
mean of its valid neighbours. Output pixels whose footprint holds no valid
source pixel are NaN in ``combined`` and transparent in ``lovi``.

Besides writing the combined map (and Fast-CAM) into the Zarr store as 16-bit
codes (:mod:`~geosal.pipeline.layout`), a block encodes its COG tiles
(level 0) into fragment files and writes the first overview of its layers
into the scratch pyramid, from which :mod:`~geosal.pipeline.overviews` builds
the coarser levels: the COG export costs the client only a concatenation.
Arithmetic is float32 torch, single-threaded in each task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from geosal.pipeline.job import SceneJob
from geosal.pipeline.layout import COG_CODES, STORE_CODES, cog_layouts, unit_codes
from geosal.pipeline.runner import torch_threads
from geosal.raster import read_region, write_region
from geosal.raster.cog_tiles import CogLayout, downsample, encode_tile
from geosal.raster.objects import join, parent, write_bytes
from geosal.raster.store import CAM, COMBINED, FAST_CAM, LOVI, VALID
from geosal.saliency.lovi import lovi_uint8
from geosal.saliency.normalize import normal_cdf

PYRAMID = ".pyramid.zarr"
"""Scratch store of the output layers' overview levels (in the partial output folder, removed at the end)."""
TILES = ".tiles"
"""Folder of the encoded COG tiles, ``<layer>/<level>/<row>_<col>`` (in the partial output folder)."""


@dataclass(frozen=True)
class SceneStatistics:
    """Scene-wide mean and standard deviation of each raw map (scales, then the CAM if any)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    count: tuple[int, ...]

    @classmethod
    def from_blocks(cls, stats: np.ndarray) -> SceneStatistics:
        """Reduce per-block ``[n_blocks, n_maps, 3]`` (count, sum, sum of squares) in float64."""
        count, total, squares = stats.sum(axis=0).T
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        variance = np.divide(squares, count, out=np.zeros_like(total), where=count > 0) - mean**2
        std = np.sqrt(np.clip(variance, 0, None))
        return cls(tuple(map(float, mean)), tuple(map(float, std)), tuple(int(c) for c in count))


def upsample_normalised(region: np.ndarray, factor: int, mean: float, std: float) -> torch.Tensor:
    """Normal-CDF squash a raw map region and upsample it by ``factor``, ignoring NaN.

    Args:
        region: ``[h, w]`` raw values, NaN where there is no data.
        factor: integer upsampling factor (1: squash only).
        mean, std: scene-wide statistics of the map.

    Returns:
        ``[h * factor, w * factor]`` float32 in [0, 1], NaN where no valid map pixel contributes.
    """
    squashed = normal_cdf(torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))[None], mean=mean, std=std)
    if factor == 1:
        return squashed[0]
    finite = torch.isfinite(squashed)
    if bool(finite.all()):  # no nodata nearby (the usual case): plain bilinear upsampling, half the work
        return F.interpolate(squashed[None], scale_factor=factor, mode="bilinear", align_corners=False)[0, 0]
    weight = finite.float()
    stacked = torch.stack([torch.nan_to_num(squashed, nan=0.0), weight], dim=1)
    up = F.interpolate(stacked, scale_factor=factor, mode="bilinear", align_corners=False)[0]
    return torch.where(up[1] > 1e-6, up[0] / up[1].clamp_min(1e-6), torch.full_like(up[0], float("nan")))


def _map_on_output(job: SceneJob, name: str, stride: int, row: int, col: int, rows: int, cols: int,
                   mean: float, std: float) -> torch.Tensor:
    """Raw map ``name`` (stride ``stride``) normalised and upsampled onto output pixels
    ``[row:row+rows, col:col+cols]``: ``[rows, cols]`` float32, NaN where no data."""
    factor = stride // job.plan.output_stride
    map_row, map_col = row // factor - 1, col // factor - 1
    region = read_region(job.store, name, map_row, map_col, -(-rows // factor) + 2, -(-cols // factor) + 2)
    up = upsample_normalised(region, factor, mean, std)
    return up[factor : factor + rows, factor : factor + cols]


def valid_on_output(job: SceneJob, index: int) -> np.ndarray:
    """Bool ``[rows, cols]`` on the output grid under block ``index``: some working pixel of the footprint is valid."""
    plan = job.plan
    row, col = plan.block_origin(index)
    rows, cols = plan.block_shape(index)
    s = plan.output_stride
    out_rows, out_cols = -(-rows // s), -(-cols // s)
    valid = read_region(job.store, VALID, row, col, out_rows * s, out_cols * s).astype(bool)
    return valid.reshape(out_rows, s, out_cols, s).any(axis=(1, 3))


def render_block(job: SceneJob, index: int, statistics: SceneStatistics) -> None:
    """Write the output layers under block ``index``: into the store, as COG tiles, and their first overview.

    Single-threaded: blocks render in parallel, one per executor thread (see
    :func:`~geosal.pipeline.runner.torch_threads`)."""
    with torch_threads(1):
        _render_block(job, index, statistics)


def _render_block(job: SceneJob, index: int, statistics: SceneStatistics) -> None:
    plan = job.plan
    s = plan.output_stride
    working_row, working_col = plan.block_origin(index)
    row, col = working_row // s, working_col // s
    valid = valid_on_output(job, index)
    rows, cols = valid.shape
    upsampled = torch.stack([
        _map_on_output(job, scale.name, scale.stride, row, col, rows, cols, statistics.mean[k], statistics.std[k])
        for k, scale in enumerate(plan.scales)
    ])
    weights = torch.tensor(plan.weights, dtype=torch.float32).view(-1, 1, 1)
    valid_t = torch.from_numpy(valid)
    present = torch.isfinite(upsampled)
    if bool(present.all()):  # every map has data everywhere: Eq. 3 as it is
        combined = (upsampled * weights).sum(0) / weights.sum()
        upsampled_or_zero = upsampled
    else:
        upsampled_or_zero = torch.nan_to_num(upsampled, nan=0.0)
        norm = (present * weights).sum(0)
        combined = torch.where(norm > 0, (upsampled_or_zero * weights).sum(0) / norm.clamp_min(1e-12),
                               torch.full_like(norm, float("nan")))
    nodata = torch.full_like(combined, float("nan"))
    combined = combined.clamp(0, 1) if bool(valid_t.all()) else torch.where(valid_t, combined.clamp(0, 1), nodata)
    maps = {COMBINED: combined}
    if plan.fast_cam_class is not None:
        k = len(plan.scales)
        cam = _map_on_output(job, CAM, plan.scales[-1].stride, row, col, rows, cols, statistics.mean[k], statistics.std[k])
        maps[FAST_CAM] = torch.where(valid_t, combined * torch.nan_to_num(cam, nan=0.0), nodata)

    layers = {}
    for name, values in maps.items():
        write_region(job.store, name, row, col, unit_codes(values, STORE_CODES, np.uint16))
        layers[name] = unit_codes(values, COG_CODES, np.uint8)[None]
    rgb = lovi_uint8(upsampled_or_zero[None])[0] * valid_t
    layers[LOVI] = torch.cat([rgb, (valid_t * 255).to(torch.uint8)[None]]).numpy()

    for name, layout in cog_layouts(plan).items():
        encode_block_tiles(job, name, layout, 0, row, col, layers[name])
        if len(layout.levels) > 1:
            write_region(pyramid_path(job), pyramid_array(name, 1), row // 2, col // 2, downsample(layout, layers[name]))
        else:  # one tile, no overview: keep level 0 for the quicklook
            write_region(pyramid_path(job), pyramid_array(name, 0), row, col, layers[name])


def encode_block_tiles(job: SceneJob, layer: str, layout: CogLayout, level: int, row: int, col: int,
                       data: np.ndarray) -> None:
    """Encode the COG tiles of ``data`` ``[bands, h, w]``, whose top-left pixel is ``(row, col)`` of ``level``
    (multiples of the tile side), into fragment files."""
    tile = layout.tile
    for top in range(0, data.shape[1], tile):
        for left in range(0, data.shape[2], tile):
            encoded = encode_tile(layout, data[:, top : top + tile, left : left + tile])
            write_fragment(tile_path(job, layer, level, (row + top) // tile, (col + left) // tile), encoded)


def write_fragment(path: str, content: bytes) -> None:
    """Write an encoded tile (a file, or one object in an object store); a rerun of the task rewrites the same bytes."""
    write_bytes(path, content)


def partial_folder(job: SceneJob) -> str:
    """The scene's partial output folder (the one holding its Zarr store): a local path or an ``s3://`` prefix."""
    return parent(job.store)


def pyramid_path(job: SceneJob) -> str:
    """The scratch store of the output layers' overview levels."""
    return join(partial_folder(job), PYRAMID)


def pyramid_array(layer: str, level: int) -> str:
    """Name of ``layer``'s overview ``level`` in the scratch pyramid."""
    return f"{layer}_{level}"


def tile_path(job: SceneJob, layer: str, level: int, row: int, col: int) -> str:
    """The fragment file (or object) of one encoded COG tile."""
    return join(partial_folder(job), TILES, layer, str(level), f"{row}_{col}")
