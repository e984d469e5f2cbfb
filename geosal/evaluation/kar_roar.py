"""KAR and ROAR with retraining (Hooker et al.; Section 2.4 and Table 5 of the paper).

For each method and percentage ``p``: mask every training and validation image
(KAR keeps the ``p`` most salient pixels, ROAR removes them; removed pixels
become the dataset's mean colour, i.e. about 0 after normalisation), train a
fresh network FROM SCRATCH on the masked training images with
:func:`geosal.models.training.train_classifier`, and record its accuracy on
the masked validation images after the last epoch.

Masking is done on ``uint8`` images with the mean colour rounded to a grey
level (``train_classifier`` takes ``uint8``), so a masked pixel normalises to
within ``0.5 / 255 / std`` (< 0.01) of 0. The training augmentation (crops,
flips, rotations, colour jitter) applies to the masked images, as Hooker et
al. retrain with the standard augmentation.

Each cell is repeated with several *retraining* seeds (the initial weights,
the batch order and the augmentation), independent of the maps' seed (the
random maps, the SmoothGrad noise and the tie-breaking of the masks), so the
spread between retrainings can be measured. Every cell ``(method, mode, p,
seed)`` is saved when it finishes (see :class:`geosal.evaluation.cells.CellStore`)
with the outcome on every validation image (``correct``, in ``val_ids``
order), which the paired bootstrap of :mod:`geosal.evaluation.uncertainty`
resamples; a rerun skips finished cells.

The same machinery runs the ``layers`` protocol: the single-scale maps
``<statistic>_L1..L5`` and the per-scale random maps ``random_L1..L5`` as
input-pixel masks at one KAR and one ROAR percentage, for Eqs. 8 and 9 per
layer (Table 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from geosal.evaluation.cells import CellStore
from geosal.evaluation.masking import keep_mask, mask_uint8
from geosal.models import build_network
from geosal.models.training import TrainingConfig, predict, train_classifier

REFERENCE = "unmasked"
"""Method name of the reference cell: a network retrained on unmasked images."""


@dataclass(frozen=True)
class Cell:
    """One retraining.

    Attributes:
        method: saliency method name (or :data:`REFERENCE`).
        mode: ``"kar"``, ``"roar"`` or ``"none"`` (the reference).
        fraction: ``p``: kept (KAR) or removed (ROAR) share of the pixels.
        seed: the retraining seed (initial weights, batch order, augmentation).
        same_as: the key of a cell whose result this one shares (random ROAR(p) = KAR(1 - p), same seed).
    """

    method: str
    mode: str
    fraction: float
    seed: int = 0
    same_as: tuple[str, str, float, str] | None = None

    @property
    def key(self) -> tuple[str, str, float, str]:
        return self.method, self.mode, round(self.fraction, 6), f"s{self.seed}"


def plan_cells(methods: Sequence[str], percentages: Sequence[float], share_random: bool = True,
               reference: bool = True, seeds: Sequence[int] = (0,)) -> list[Cell]:
    """The cells of the retraining protocol, seed by seed (every cell of the first
    seed before any of the second, so an interrupted run leaves whole repetitions),
    then method by method (KAR before ROAR), the reference first and the random baseline next."""
    methods = sorted(methods, key=lambda m: m != "random")
    fractions = [round(float(p), 6) for p in percentages]
    cells = []
    for seed in seeds:
        cells += [Cell(REFERENCE, "none", 1.0, seed)] if reference else []
        for method in methods:
            for mode in ("kar", "roar"):
                for p in fractions:
                    same_as = None
                    if share_random and method.startswith("random") and mode == "roar" and round(1 - p, 6) in fractions:
                        same_as = Cell(method, "kar", round(1 - p, 6), seed).key
                    cells.append(Cell(method, mode, p, seed, same_as))
    return cells


def layer_cells(methods: Sequence[str], kar: float, roar: float, seeds: Sequence[int] = (0,)) -> list[Cell]:
    """Cells of the ``layers`` protocol: KAR at ``kar`` and ROAR at ``roar`` per single-scale method and seed."""
    return [Cell(m, mode, p, seed) for seed in seeds for m in methods for mode, p in (("kar", kar), ("roar", roar))]


@dataclass
class RetrainData:
    """The images of the retraining protocol at the retraining size.

    Attributes:
        train_images, val_images: ``uint8`` ``[N, s, s, 3]``.
        train_labels, val_labels: ``int64`` ``[N]``.
        train_ids, val_ids: image ids (seed the mask tie-breaking).
        mean, std: normalisation of the network (the shipped model's).
        fill: ``uint8`` ``[3]`` colour of removed pixels (the dataset mean).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    train_ids: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    val_ids: np.ndarray
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fill: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(self.train_labels.max(), self.val_labels.max())) + 1


def masked_images(images: np.ndarray, maps: np.ndarray, fraction: float, mode: str, ids: np.ndarray,
                  fill: np.ndarray, seed: int = 0, chunk: int = 256) -> np.ndarray:
    """``images`` (``uint8 [N, s, s, 3]``) masked by ``maps`` (``[N, s, s]``) in
    ``mode`` at ``fraction``; ``mode="none"`` returns them unchanged."""
    if mode == "none":
        return images
    if maps.shape != images.shape[:3]:
        raise ValueError(f"maps {maps.shape} do not match images {images.shape}")
    out = np.empty_like(images)
    for first in range(0, len(images), chunk):
        part = slice(first, first + chunk)
        keep = keep_mask(torch.from_numpy(np.array(maps[part], dtype=np.float32)), fraction, mode, ids[part].tolist(), seed)
        out[part] = mask_uint8(images[part], keep, fill)
    return out


def retrain(train_images: np.ndarray, val_images: np.ndarray, data: RetrainData, architecture: str,
            training: TrainingConfig, log: Callable[[str], None] = print, device: str = "cpu") -> dict:
    """Train a fresh ``architecture`` (seeded by ``training.seed``) on ``train_images`` on ``device``
    and evaluate it on ``val_images``.

    Returns:
        ``accuracy`` (last epoch, fraction in [0, 1]), ``correct`` (0/1 per validation image, in order),
        ``best_accuracy`` (over the validated epochs), ``seconds``, ``seconds_per_epoch``, ``history``.
    """
    torch.manual_seed(training.seed)
    network = build_network(architecture, data.num_classes)
    started = time.perf_counter()
    history = train_classifier(network, train_images, data.train_labels, val_images, data.val_labels,
                               data.mean, data.std, training, log=log, device=device)
    seconds = time.perf_counter() - started
    correct = predict(network, val_images, data.mean, data.std, bf16=training.bf16) == data.val_labels
    validated = [h["val_accuracy"] for h in history if "val_accuracy" in h]
    return {
        "accuracy": float(correct.mean()),
        "correct": correct.astype(int).tolist(),
        "best_accuracy": max(validated),
        "seconds": seconds,
        "seconds_per_epoch": seconds / len(history),
        "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in h.items()} for h in history],
    }


def run_cells(
    cells: Sequence[Cell], store: CellStore, data: RetrainData, maps: Callable[[str], tuple[np.ndarray, np.ndarray]],
    architecture: str, training: TrainingConfig, labels: dict[str, str], seed: int = 0,
    log: Callable[[str], None] = print, protocol: str = "kar-roar", device: str = "cpu",
    extra: dict[str, dict] | None = None,
) -> int:
    """Run every cell not yet in ``store``.

    Args:
        maps: ``method -> (train maps, val maps)`` at the retraining size.
        training: the retraining settings; each cell replaces its ``seed`` by the cell's.
        labels: table label of each method.
        seed: the maps' seed (the tie-breaking of the masks), not the retraining's.
        device: where the networks are trained.
        extra: method -> fields added to each of its rows (``smoe_learned``: the weights its maps used).

    Returns:
        The number of cells computed (not skipped) in this call.
    """
    computed = 0
    total = len(cells)
    for number, cell in enumerate(cells, 1):
        if store.has(*cell.key):
            continue
        label = labels.get(cell.method, cell.method)
        row = {"protocol": protocol, "method": cell.method, "label": label, "mode": cell.mode,
               "fraction": cell.fraction, "seed": cell.seed, "train_images": int(len(data.train_labels)),
               "val_images": int(len(data.val_labels)), "image_size": int(data.train_images.shape[1]),
               "val_ids": np.asarray(data.val_ids).tolist(), "bf16": training.bf16, **(extra or {}).get(cell.method, {})}
        name = f"[{number}/{total}] {cell.method} {cell.mode} {100 * cell.fraction:g}% seed {cell.seed}"
        if cell.same_as is not None and store.has(*cell.same_as):
            source = store.get(*cell.same_as)
            row.update({k: source[k] for k in ("accuracy", "correct", "best_accuracy", "seconds", "seconds_per_epoch", "bf16")})
            row["shared_with"] = f"{cell.same_as[1]} {100 * cell.same_as[2]:g}%"
            store.put(row, *cell.key)
            log(f"{name}: shares {row['shared_with']} ({row['accuracy']:.4f})")
            continue
        log(f"{name}: masking and retraining from scratch")
        if cell.mode == "none":
            train_images, val_images = data.train_images, data.val_images
        else:
            train_maps, val_maps = maps(cell.method)
            train_images = masked_images(data.train_images, train_maps, cell.fraction, cell.mode, data.train_ids, data.fill, seed)
            val_images = masked_images(data.val_images, val_maps, cell.fraction, cell.mode, data.val_ids, data.fill, seed)
        result = retrain(train_images, val_images, data, architecture, replace(training, seed=cell.seed),
                         log=lambda line: log("    " + line), device=device)
        row.update(result)
        store.put(row, *cell.key)
        computed += 1
        log(f"    -> accuracy {result['accuracy']:.4f} in {result['seconds']:.0f} s")
    return computed
