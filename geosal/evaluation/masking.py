"""Pixel rankings and masks shared by the protocols (KAR / ROAR, ROAD, deletion).

Exact ties are common in saliency maps (Grad-CAM and Fast-CAM are exactly 0
wherever the class map is clamped, many single-scale maps are flat in places).
:func:`geosal.saliency.top_fraction_mask` breaks ties by row-major index,
which among many tied pixels would always pick the top rows of the image. Here
ties are broken by a seeded random permutation per image instead (keyed by the
image id): the map is permuted, masked with :func:`geosal.saliency.kar_mask` /
:func:`geosal.saliency.roar_mask` and permuted back. So the masks keep their
exact counts (``round(p * H * W)``) and ``KAR(p) == ~ROAR(p)`` still holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from geosal.saliency.masks import kar_mask, roar_mask, selected_count

MODES = ("kar", "roar")


def tie_break_permutation(image_ids: Sequence[int], pixels: int, seed: int = 0) -> Tensor:
    """One random permutation of ``range(pixels)`` per image, ``[B, pixels]`` int64,
    seeded by ``(seed, image id)``."""
    rows = []
    for image_id in image_ids:
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + 17 * int(image_id) + 5)
        rows.append(torch.randperm(pixels, generator=generator))
    return torch.stack(rows) if rows else torch.empty(0, pixels, dtype=torch.long)


def _permuted(saliency: Tensor, image_ids: Sequence[int], seed: int) -> tuple[Tensor, Tensor]:
    if saliency.ndim != 3:
        raise ValueError(f"expected saliency [B, H, W], got {tuple(saliency.shape)}")
    if len(image_ids) != saliency.shape[0]:
        raise ValueError(f"got {len(image_ids)} image ids for {saliency.shape[0]} maps")
    batch = saliency.shape[0]
    permutation = tie_break_permutation(image_ids, saliency[0].numel(), seed)
    return saliency.reshape(batch, -1).float().gather(1, permutation), permutation


def keep_mask(saliency: Tensor, fraction: float, mode: str, image_ids: Sequence[int], seed: int = 0) -> Tensor:
    """Which pixels stay, ``[B, H, W]`` bool.

    Args:
        saliency: ``[B, H, W]`` maps (larger = more salient).
        fraction: ``p`` in [0, 1]: the fraction kept (``kar``) or removed (``roar``).
        mode: ``"kar"`` keeps the ``p`` most salient pixels; ``"roar"`` removes them.
        image_ids: one id per map, seeds the tie-breaking.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'kar' or 'roar', got {mode!r}")
    flat, permutation = _permuted(saliency, image_ids, seed)
    function = kar_mask if mode == "kar" else roar_mask
    permuted_mask = function(flat.unsqueeze(1), fraction).reshape(flat.shape)
    mask = torch.empty_like(permuted_mask)
    mask.scatter_(1, permutation, permuted_mask)
    return mask.view(saliency.shape)


def saliency_ranks(saliency: Tensor, image_ids: Sequence[int], seed: int = 0) -> Tensor:
    """Rank of every pixel, 0 = most salient, ``[B, H, W]`` int64, with the same
    tie-breaking as :func:`keep_mask`: ``ranks < selected_count(p, H*W)`` is
    exactly ``keep_mask(saliency, p, "kar", ...)``."""
    flat, permutation = _permuted(saliency, image_ids, seed)
    order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    positions = permutation.gather(1, order)  # pixel index of rank k
    ranks = torch.empty_like(positions)
    ranks.scatter_(1, positions, torch.arange(positions.shape[1]).expand_as(positions).contiguous())
    return ranks.view(saliency.shape)


def top_from_ranks(ranks: Tensor, fraction: float) -> Tensor:
    """``[B, H, W]`` bool: the ``fraction`` best-ranked pixels of each map."""
    return ranks < selected_count(fraction, ranks[0].numel())


def mean_colour_uint8(mean: Sequence[float], pixel_scale: float = 1 / 255) -> np.ndarray:
    """The dataset mean as a ``uint8`` RGB colour (normalises to about 0: within
    half a grey level, i.e. ``0.5 / 255 / std`` in normalised units)."""
    return np.clip(np.rint(np.asarray(mean, dtype=np.float64) / pixel_scale), 0, 255).astype(np.uint8)


def mask_uint8(images: np.ndarray, keep: np.ndarray | Tensor, fill: np.ndarray) -> np.ndarray:
    """Replace the pixels outside ``keep`` by ``fill``.

    Args:
        images: ``uint8`` ``[N, H, W, 3]``.
        keep: bool ``[N, H, W]``.
        fill: ``uint8`` ``[3]`` colour (the dataset mean, Hooker et al.).

    Returns:
        A new ``uint8`` array.
    """
    keep = keep.numpy() if isinstance(keep, Tensor) else np.asarray(keep)
    return np.where(keep[..., None], images, np.asarray(fill, dtype=np.uint8)).astype(np.uint8)


def resize_maps(maps: Tensor, size: int) -> Tensor:
    """``[B, h, w]`` maps to ``[B, size, size]`` by area averaging (each output
    pixel gets the mean saliency of the input pixels it covers)."""
    if tuple(maps.shape[-2:]) == (size, size):
        return maps.float()
    return F.interpolate(maps.float().unsqueeze(1), size=(size, size), mode="area").squeeze(1)
