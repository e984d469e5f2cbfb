"""Train and evaluate an image classifier on an in-memory labelled collection.

Used by ``workflows/train_ucmerced.py`` (the shipped model) and by the
faithfulness evaluation (ROAR / KAR retraining on masked images). Runs on the
CPU in bfloat16 autocast when the CPU supports it, which on these machines
(AMX) roughly doubles training throughput over float32.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of :func:`train_classifier`.

    Attributes:
        epochs: passes over the training images.
        batch_size: images per optimiser step.
        crop: side of the square training crop in pixels.
        min_crop_area: smallest crop as a fraction of the image area (random resized crop).
        lr: peak SGD learning rate (after ``warmup_epochs`` of linear warm-up, then cosine decay to 0).
        weight_decay: L2 penalty on weights (not on biases and norm parameters).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        mix_probability: chance per batch of applying MixUp or CutMix (half each).
        colour_jitter: strength of brightness, contrast and saturation jitter (0 = off).
        bf16: train under bfloat16 autocast (statistics and loss stay float32).
        seed: seeds the augmentation and the initial weights.
    """

    epochs: int = 150
    batch_size: int = 64
    crop: int = 160
    min_crop_area: float = 0.35
    lr: float = 0.2
    warmup_epochs: int = 5
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    mix_probability: float = 0.5
    colour_jitter: float = 0.3
    bf16: bool = True
    seed: int = 0


EpochCallback = Callable[[int, torch.nn.Module, dict], None]


def augment(images: torch.Tensor, config: TrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """Random resized crop, flips, 90-degree rotations and colour jitter.

    Args:
        images: ``uint8`` tensor ``[B, H, W, 3]``.
        config: supplies ``crop``, ``min_crop_area`` and ``colour_jitter``.
        generator: source of randomness (CPU).

    Returns:
        ``float32`` tensor ``[B, 3, crop, crop]`` with values in [0, 1].
    """
    batch, height, width, _ = images.shape
    out = torch.empty(batch, 3, config.crop, config.crop)
    rand = torch.rand(batch, 8, generator=generator)
    for i in range(batch):
        area = config.min_crop_area + (1 - config.min_crop_area) * rand[i, 0].item()
        aspect = math.exp((rand[i, 1].item() - 0.5) * 2 * math.log(4 / 3))
        h = min(height, round(math.sqrt(area * height * width / aspect)))
        w = min(width, round(math.sqrt(area * height * width * aspect)))
        top = int(rand[i, 2].item() * (height - h + 1))
        left = int(rand[i, 3].item() * (width - w + 1))
        image = images[i, top : top + h, left : left + w].permute(2, 0, 1)
        image = TF.resize(image, [config.crop, config.crop], antialias=True)
        image = torch.rot90(image, int(rand[i, 4].item() * 4), dims=(1, 2))
        if rand[i, 5] < 0.5:
            image = image.flip(2)
        image = image.float().div_(255)
        if config.colour_jitter:
            j = config.colour_jitter
            image = TF.adjust_brightness(image, 1 + j * (2 * rand[i, 6].item() - 1))
            image = TF.adjust_contrast(image, 1 + j * (2 * rand[i, 7].item() - 1))
            image = TF.adjust_saturation(image, 1 + j * (2 * torch.rand(1, generator=generator).item() - 1))
        out[i] = image.clamp_(0, 1)
    return out


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator, probability: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply MixUp (alpha 0.2) or CutMix (alpha 1) to a batch with ``probability``.

    Args:
        x: ``[B, 3, H, W]`` float images.
        y: ``[B]`` integer labels.

    Returns:
        The (possibly mixed) images and soft targets ``[B, num_classes]`` summing to 1.
    """
    targets = F.one_hot(y, num_classes).float()
    draw = torch.rand(2, generator=generator)
    if draw[0] >= probability:
        return x, targets
    order = torch.randperm(len(y), generator=generator)
    if draw[1] < 0.5:
        lam = torch.distributions.Beta(0.2, 0.2).sample().item()
        return lam * x + (1 - lam) * x[order], lam * targets + (1 - lam) * targets[order]
    lam = torch.distributions.Beta(1.0, 1.0).sample().item()
    _, _, height, width = x.shape
    cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
    cy, cx = torch.randint(height, (1,), generator=generator).item(), torch.randint(width, (1,), generator=generator).item()
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    x = x.clone()
    x[:, :, top:bottom, left:right] = x[order, :, top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (height * width)
    return x, lam * targets + (1 - lam) * targets[order]


def normalise(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a ``[B, C, H, W]`` tensor in [0, 1]."""
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean_t) / torch.tensor(std, dtype=x.dtype).view(1, -1, 1, 1)


def train_classifier(
    network: torch.nn.Module,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    config: TrainingConfig,
    on_epoch_end: EpochCallback | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Train ``network`` in place with SGD (Nesterov momentum 0.9).

    Args:
        network: classifier mapping ``[B, 3, H, W]`` to logits ``[B, num_classes]``.
        train_images, val_images: ``uint8`` arrays ``[N, H, W, 3]``.
        train_labels, val_labels: ``int64`` arrays ``[N]``.
        mean, std: per-channel normalisation of images scaled to [0, 1].
        config: hyper-parameters.
        on_epoch_end: called as ``on_epoch_end(epoch, network, metrics)`` after each epoch's validation.
        log: receives one line per epoch.

    Returns:
        One metrics dict per epoch: ``epoch``, ``loss``, ``val_accuracy``,
        ``train_images_per_s`` and ``seconds``.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    network.to(memory_format=torch.channels_last)
    decay = [p for n, p in network.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in network.named_parameters() if p.ndim <= 1]
    optimiser = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, momentum=0.9, nesterov=True,
    )
    steps_per_epoch = math.ceil(len(train_labels) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup_steps = config.warmup_epochs * steps_per_epoch

    def lr_at(step: int) -> float:
        if step < warmup_steps:
            return config.lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))

    images = torch.from_numpy(train_images)
    labels = torch.from_numpy(train_labels)
    history = []
    step = 0
    for epoch in range(1, config.epochs + 1):
        network.train()
        started = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator)
        total_loss, seen = 0.0, 0
        for first in range(0, len(order), config.batch_size):
            index = order[first : first + config.batch_size]
            if len(index) < 2:
                continue
            x = normalise(augment(images[index], config, generator), mean, std)
            x, target = mix_batch(x, labels[index], num_classes, generator, config.mix_probability)
            x = x.contiguous(memory_format=torch.channels_last)
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = network(x)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(index)
            seen += len(index)
            step += 1
        train_seconds = time.perf_counter() - started
        predictions = predict(network, val_images, mean, std, bf16=config.bf16)
        metrics = {
            "epoch": epoch,
            "loss": total_loss / max(seen, 1),
            "val_accuracy": float((predictions == val_labels).mean()),
            "train_images_per_s": seen / train_seconds,
            "seconds": time.perf_counter() - started,
        }
        history.append(metrics)
        log(
            f"epoch {epoch:3d}/{config.epochs}  loss {metrics['loss']:.3f}  "
            f"val acc {metrics['val_accuracy']:.3f}  {metrics['train_images_per_s']:.1f} img/s"
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, network, metrics)
    network.eval()
    return history


@torch.no_grad()
def predict(
    network: torch.nn.Module,
    images: np.ndarray,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 64,
    bf16: bool = False,
) -> np.ndarray:
    """Predicted class of each image.

    Args:
        images: ``uint8`` array ``[N, H, W, 3]``, fed at full size.

    Returns:
        ``int64`` array ``[N]``.
    """
    was_training = network.training
    network.eval()
    out = []
    for first in range(0, len(images), batch_size):
        x = torch.from_numpy(images[first : first + batch_size]).permute(0, 3, 1, 2).float().div_(255)
        x = normalise(x, mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out.append(network(x).float().argmax(1))
    network.train(was_training)
    return torch.cat(out).numpy()
