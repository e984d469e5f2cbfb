"""Pass 2 of a scene, one output chunk at a time: normalise, upsample, combine, render.

Each chunk reads the raw maps that cover it plus a one-pixel margin, squashes
them with the *scene-wide* statistics of pass 1 (so every chunk uses the same
normalisation), upsamples them bilinearly on the global grid and combines them
with the weights of Eq. 3. The upsampling is exactly
``F.interpolate(whole_map, scale_factor=stride, mode="bilinear", align_corners=False)``
restricted to the chunk, so chunk borders cannot show.

Nodata is handled by normalised convolution: map pixels whose footprint is
all nodata carry weight 0, and each output pixel is the weighted bilinear
mean of its valid neighbours. Output pixels whose source pixel is nodata are
NaN in ``combined`` and transparent in ``lovi``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from geosal.pipeline.job import SceneJob
from geosal.raster import read_region, write_region
from geosal.raster.store import CAM, COMBINED, FAST_CAM, LOVI, VALID
from geosal.saliency.lovi import lovi_uint8
from geosal.saliency.normalize import normal_cdf


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


def upsample_normalised(region: np.ndarray, stride: int, mean: float, std: float) -> np.ndarray:
    """Normal-CDF squash a raw map region and upsample it by ``stride``, ignoring NaN.

    Args:
        region: ``[h, w]`` raw values, NaN where there is no data.
        stride: integer upsampling factor.
        mean, std: scene-wide statistics of the map.

    Returns:
        ``[h * stride, w * stride]`` float32 in [0, 1], NaN where no valid map
        pixel contributes.
    """
    values = torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))[None]
    squashed = normal_cdf(values, mean=mean, std=std)
    weight = torch.isfinite(squashed).float()
    stacked = torch.stack([torch.nan_to_num(squashed, nan=0.0) * weight, weight], dim=1)
    up = F.interpolate(stacked, scale_factor=stride, mode="bilinear", align_corners=False)[0]
    out = torch.where(up[1] > 1e-6, up[0] / up[1].clamp_min(1e-6), torch.full_like(up[0], float("nan")))
    return out.numpy()


def _scale_region(store: str, name: str, stride: int, row: int, col: int, rows: int, cols: int,
                  mean: float, std: float) -> np.ndarray:
    """The normalised map ``name`` upsampled onto working pixels ``[row:row+rows, col:col+cols]``."""
    map_row, map_col = row // stride - 1, col // stride - 1
    region = read_region(store, name, map_row, map_col, -(-rows // stride) + 2, -(-cols // stride) + 2)
    up = upsample_normalised(region, stride, mean, std)
    top, left = row - map_row * stride, col - map_col * stride
    return up[top : top + rows, left : left + cols]


def run_chunk(job: SceneJob, index: int, statistics: SceneStatistics) -> None:
    """Write ``combined``, ``lovi`` (and ``fast_cam``) for the chunk under block ``index``."""
    plan, store = job.plan, job.store
    row, col = plan.block_origin(index)
    rows, cols = plan.block_shape(index)
    valid = read_region(store, VALID, row, col, rows, cols).astype(bool)
    upsampled = np.stack([
        _scale_region(store, s.name, s.stride, row, col, rows, cols, statistics.mean[k], statistics.std[k])
        for k, s in enumerate(plan.scales)
    ])
    weights = np.asarray(plan.weights, dtype=np.float32).reshape(-1, 1, 1)
    present = np.isfinite(upsampled)
    total = (np.where(present, upsampled, 0) * weights).sum(0)
    norm = (present * weights).sum(0)
    combined = np.divide(total, norm, out=np.full_like(total, np.nan), where=norm > 0)
    combined = np.where(valid, np.clip(combined, 0, 1), np.nan).astype(np.float32)
    write_region(store, COMBINED, row, col, combined)

    rgb = lovi_uint8(torch.from_numpy(np.nan_to_num(upsampled, nan=0.0))[None])[0].numpy()
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    write_region(store, LOVI, row, col, np.concatenate([rgb * valid, alpha[None]]).astype(np.uint8))

    if plan.fast_cam_class is not None:
        k = len(plan.scales)
        cam = _scale_region(store, CAM, plan.scales[-1].stride, row, col, rows, cols, statistics.mean[k], statistics.std[k])
        fast_cam = np.where(valid, combined * np.nan_to_num(cam, nan=0.0), np.nan).astype(np.float32)
        write_region(store, FAST_CAM, row, col, fast_cam)
