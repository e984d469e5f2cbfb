"""ROAD: RemOve And Debias (Rong, Leemann et al. 2022, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods").

No retraining: removed pixels are imputed by *noisy linear imputation* and the
ORIGINAL model's accuracy is measured on the imputed images, removing the most
relevant pixels first (MoRF, lower accuracy = better attribution) or the least
relevant first (LeRF, higher = better), at the same percentages as KAR / ROAR.

Noisy linear imputation: every removed pixel is the weighted mean of its eight
neighbours (weights 1/6 for the four direct ones, 1/12 for the diagonals;
neighbours outside the image are dropped and the weights renormalised),
neighbours that are themselves removed included. That is one sparse linear
system per image (all channels share the matrix), solved exactly; then Gaussian
noise of standard deviation ``noise`` (0.01, as in the authors' code) is added
to the imputed pixels only. Kept pixels are never changed. Imputation works on
the normalised tensor (it is linear and the weights sum to 1, so it commutes
with the per-channel normalisation; only the noise scale depends on it). A
removed region that touches no kept pixel can only be the whole image; it is
filled with ``fill`` (the dataset mean, 0 after normalisation) plus noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch import Tensor

from geosal.evaluation.masking import keep_mask

ORDERS = ("morf", "lerf")
NEIGHBOURS: tuple[tuple[int, int, float], ...] = (
    (-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
    (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12),
)
"""``(dy, dx, weight)`` of the imputation stencil (Rong et al.)."""


def impute_linear(image: np.ndarray, keep: np.ndarray, noise: float = 0.0, rng: np.random.Generator | None = None,
                  fill: float = 0.0) -> np.ndarray:
    """Noisy linear imputation of one image.

    Args:
        image: ``[C, H, W]`` float array.
        keep: ``[H, W]`` bool, ``True`` where the pixel is known.
        noise: standard deviation of the Gaussian noise added to imputed pixels.
        rng: noise source (default: seeded with 0).
        fill: value of a removed region with no kept neighbour (only the whole image).

    Returns:
        ``[C, H, W]`` float64: kept pixels unchanged; each removed pixel equals
        the weighted mean of its in-image neighbours (before the noise).
    """
    channels, height, width = image.shape
    keep = np.asarray(keep, dtype=bool)
    out = image.astype(np.float64, copy=True)
    unknown = np.flatnonzero(~keep.reshape(-1))
    if unknown.size == 0:
        return out
    rng = np.random.default_rng(0) if rng is None else rng
    flat = out.reshape(channels, -1)
    if not keep.any():
        flat[:, :] = fill
    else:
        variable = np.full(height * width, -1, dtype=np.int64)
        variable[unknown] = np.arange(unknown.size)
        ys, xs = np.divmod(unknown, width)
        rows, cols, values = [], [], []
        diagonal = np.zeros(unknown.size)
        rhs = np.zeros((unknown.size, channels))
        for dy, dx, weight in NEIGHBOURS:
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
            equation = np.flatnonzero(inside)
            neighbour = ny[inside] * width + nx[inside]
            diagonal[equation] += weight
            known = keep.reshape(-1)[neighbour]
            rhs[equation[known]] += weight * flat[:, neighbour[known]].T
            rows.append(equation[~known])
            cols.append(variable[neighbour[~known]])
            values.append(np.full(int((~known).sum()), -weight))
        rows.append(np.arange(unknown.size))
        cols.append(np.arange(unknown.size))
        values.append(diagonal)
        matrix = scipy.sparse.csc_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(unknown.size, unknown.size)
        )
        # The matrix is symmetric and diagonally dominant: symmetric-mode SuperLU without
        # pivoting and a minimum-degree ordering of A + A^T is ~35% faster than spsolve's default.
        factor = scipy.sparse.linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                          options={"SymmetricMode": True})
        solution = factor.solve(rhs)
        flat[:, unknown] = np.asarray(solution).reshape(unknown.size, channels).T
    if noise:
        flat[:, unknown] += rng.normal(0.0, noise, size=(channels, unknown.size))
    return out


def impute_batch(images: Tensor, keep: Tensor, noise: float, image_ids: Sequence[int], seed: int = 0) -> Tensor:
    """:func:`impute_linear` for ``images`` ``[B, C, H, W]`` and ``keep`` ``[B, H, W]``;
    the noise of each image is seeded by ``(seed, image id)``."""
    def one(args) -> np.ndarray:
        image, mask, image_id = args
        return impute_linear(image, mask, noise, np.random.default_rng([int(seed), int(image_id), 7]))

    work = list(zip(images.detach().cpu().numpy(), keep.cpu().numpy(), image_ids))
    workers = max(1, min(torch.get_num_threads(), len(work)))
    if workers == 1:
        out = [one(item) for item in work]
    else:  # SuperLU releases the GIL: one image per thread
        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(one, work))
    return torch.from_numpy(np.stack(out)).to(images.dtype)


def removal_keep_mask(saliency: Tensor, fraction: float, order: str, image_ids: Sequence[int], seed: int = 0) -> Tensor:
    """Pixels kept after removing ``fraction`` of them: the most salient first
    (``morf``, the ROAR mask) or the least salient first (``lerf``: keep the
    ``1 - fraction`` most salient, a KAR mask)."""
    if order == "morf":
        return keep_mask(saliency, fraction, "roar", image_ids, seed)
    if order == "lerf":
        return keep_mask(saliency, 1.0 - fraction, "kar", image_ids, seed)
    raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")


def road_correct(
    classify: Callable[[Tensor], Tensor], images: Tensor, labels: Tensor, saliency: Tensor, fraction: float, order: str,
    image_ids: Sequence[int], noise: float = 0.01, seed: int = 0, batch_size: int = 32,
) -> np.ndarray:
    """Whether ``classify`` (normalised images -> predicted classes) is right on
    each imputed image: ``bool [N]`` (its mean is the ROAD accuracy).

    Args:
        images: normalised ``[N, C, H, W]``.
        labels: ``[N]`` true classes.
        saliency: ``[N, H, W]``.
        fraction: share of pixels removed.
        order: ``"morf"`` or ``"lerf"``.
    """
    correct = []
    for first in range(0, len(images), batch_size):
        part = slice(first, first + batch_size)
        ids = list(image_ids[part])
        keep = removal_keep_mask(saliency[part], fraction, order, ids, seed)
        imputed = impute_batch(images[part], keep, noise, ids, seed)
        correct.append((classify(imputed).cpu() == labels[part].cpu()).numpy())
    return np.concatenate(correct) if correct else np.zeros(0, dtype=bool)

