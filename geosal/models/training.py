"""Train and evaluate an image classifier on an in-memory labelled collection.

Used by ``workflows/train_ucmerced.py`` (the shipped model) and by the
faithfulness evaluation (ROAR / KAR retraining on masked images). The images
are held in memory on the training device as ``uint8`` and augmented there a
whole batch at a time (:func:`augment`), so a GPU is not starved by a Python
loop; the network runs channels-last, under bfloat16 autocast when asked
(on CPUs with AMX that roughly doubles throughput over float32; on CUDA it is
the usual mixed precision; on CPUs without bfloat16 arithmetic, AVX2 only, it
is about 8 times slower, so callers ask for it through
:func:`geosal.models.device.native_bf16`). Every random number is drawn from one seeded CPU generator,
so a seed gives the same augmentation, batches and initial weights on any
device (the arithmetic itself differs in the last bits between devices).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of :func:`train_classifier`.

    Attributes:
        epochs: passes over the training images.
        batch_size: images per optimiser step.
        crop: side of the square training crop in pixels.
        min_crop_area: smallest crop as a fraction of the image area (random resized crop).
        max_aspect_ratio: the crop's width / height is drawn log-uniformly in [1 / r, r] (1: square crops).
        lr: peak SGD learning rate (after ``warmup_epochs`` of linear warm-up, then cosine decay to 0).
        weight_decay: L2 penalty on weights (not on biases and norm parameters).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        mix_probability: chance per batch of applying MixUp or CutMix (half each).
        colour_jitter: strength of brightness, contrast and saturation jitter (0 = off).
        bf16: train under bfloat16 autocast (statistics and loss stay float32).
        seed: seeds the augmentation, the batch order, MixUp / CutMix and torch's global generator (so the
            initial weights follow it when the network is built after seeding, as the retraining protocol does).
        validate_every: validate after every ``validate_every`` epochs (and always after the last).
    """

    epochs: int = 150
    batch_size: int = 64
    crop: int = 160
    min_crop_area: float = 0.35
    max_aspect_ratio: float = 4 / 3
    lr: float = 0.2
    warmup_epochs: int = 5
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    mix_probability: float = 0.5
    colour_jitter: float = 0.3
    bf16: bool = True
    seed: int = 0
    validate_every: int = 1


EpochCallback = Callable[[int, torch.nn.Module, dict], None]


def augment(images: torch.Tensor, config: TrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """Random resized crop, flips, 90-degree rotations and colour jitter, batched on ``images.device``.

    The crop, flip and rotation of every image are one affine sampling grid
    (``grid_sample``, bilinear). When the batch's largest crop is shrunk, the
    whole batch is sampled at up to 3x the output resolution and area-averaged
    back, so down-scaling is anti-aliased (the other images of that batch get
    the same mild box filter). Colour jitter follows torchvision's order and formulas
    (brightness, contrast about the mean grey, saturation about the grey
    image, clamped to [0, 1] after each). Random numbers come from
    ``generator`` (CPU), so a seed gives the same augmentation on every device.

    Args:
        images: ``uint8`` tensor ``[B, H, W, 3]`` on any device.
        config: supplies ``crop``, ``min_crop_area``, ``max_aspect_ratio`` and ``colour_jitter``.
        generator: source of randomness (CPU).

    Returns:
        ``float32`` tensor ``[B, 3, crop, crop]`` with values in [0, 1], on ``images.device``.
    """
    batch, height, width, _ = images.shape
    device = images.device
    # 8 draws per image, 6 used: the count is kept so that a seed gives the augmentations it always gave.
    rand = torch.rand(batch, 8, generator=generator, dtype=torch.float64)
    area = config.min_crop_area + (1 - config.min_crop_area) * rand[:, 0]
    aspect = torch.exp((rand[:, 1] - 0.5) * 2 * math.log(config.max_aspect_ratio))
    crop_h = torch.sqrt(area * height * width / aspect).clamp(max=height)
    crop_w = torch.sqrt(area * height * width * aspect).clamp(max=width)
    # Crop centre in normalised coordinates [-1, 1] (align_corners=False), uniform over valid positions.
    centre_y = ((height - crop_h) * rand[:, 2] + crop_h / 2) / height * 2 - 1
    centre_x = ((width - crop_w) * rand[:, 3] + crop_w / 2) / width * 2 - 1
    quarter_turns = (rand[:, 4] * 4).long().clamp(max=3)
    flip = torch.where(rand[:, 5] < 0.5, -1.0, 1.0).double()
    angle = quarter_turns.double() * (math.pi / 2)
    cos, sin = torch.cos(angle).round(), torch.sin(angle).round()
    scale_x, scale_y = crop_w / width, crop_h / height
    theta = torch.zeros(batch, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = cos * flip * scale_x
    theta[:, 0, 1] = -sin * scale_x
    theta[:, 1, 0] = sin * flip * scale_y
    theta[:, 1, 1] = cos * scale_y
    theta[:, 0, 2] = centre_x
    theta[:, 1, 2] = centre_y
    shrink = float(torch.maximum(crop_h, crop_w).max()) / config.crop
    supersample = max(1, min(3, math.ceil(shrink - 1e-9)))
    side = config.crop * supersample
    grid = F.affine_grid(theta.float().to(device), [batch, 3, side, side], align_corners=False)
    pixels = images.permute(0, 3, 1, 2).float().div_(255)
    out = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if supersample > 1:
        out = F.avg_pool2d(out, supersample)
    if config.colour_jitter:
        j = config.colour_jitter
        factors = (1 + j * (2 * torch.rand(batch, 3, generator=generator) - 1)).to(device).view(batch, 3, 1, 1, 1)
        out = (out * factors[:, 0]).clamp_(0, 1)
        grey_mean = _grey(out).mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - grey_mean) * factors[:, 1] + grey_mean).clamp_(0, 1)
        grey = _grey(out)
        out = ((out - grey) * factors[:, 2] + grey).clamp_(0, 1)
    return out.clamp_(0, 1)


def _grey(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``[B, 3, H, W]`` images, ``[B, 1, H, W]`` (torchvision's ``rgb_to_grayscale``)."""
    r, g, b = images.unbind(1)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator, probability: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply MixUp (alpha 0.2) or CutMix (alpha 1) to a batch with ``probability``.

    Args:
        x: ``[B, 3, H, W]`` float images (any device).
        y: ``[B]`` integer labels on ``x.device``.
        generator: source of every random number (CPU).

    Returns:
        The (possibly mixed) images and soft targets ``[B, num_classes]`` summing to 1.
    """
    targets = F.one_hot(y, num_classes).float()
    draw = torch.rand(2, generator=generator)
    if draw[0] >= probability:
        return x, targets
    order = torch.randperm(len(y), generator=generator).to(x.device)
    beta = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    if draw[1] < 0.5:
        lam = float(beta.beta(0.2, 0.2))
        return lam * x + (1 - lam) * x[order], lam * targets + (1 - lam) * targets[order]
    lam = float(beta.beta(1.0, 1.0))
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
    mean_t = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean_t) / torch.tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)


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
    device: str | torch.device = "cpu",
) -> list[dict]:
    """Train ``network`` in place with SGD (Nesterov momentum 0.9) on ``device``.

    Args:
        network: classifier mapping ``[B, 3, H, W]`` to logits ``[B, num_classes]``; moved to ``device``.
        train_images, val_images: ``uint8`` arrays ``[N, H, W, 3]`` (copied to ``device`` once).
        train_labels, val_labels: ``int64`` arrays ``[N]``.
        mean, std: per-channel normalisation of images scaled to [0, 1].
        config: hyper-parameters.
        on_epoch_end: called as ``on_epoch_end(epoch, network, metrics)`` after each validated epoch.
        log: receives one line per validated epoch.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...

    Returns:
        One metrics dict per epoch: ``epoch``, ``loss``, ``train_images_per_s``,
        ``seconds`` and, for validated epochs, ``val_accuracy``.
    """
    device = torch.device(device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    network.to(device=device, memory_format=torch.channels_last)
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

    images = torch.from_numpy(np.ascontiguousarray(train_images)).to(device)
    labels = torch.from_numpy(np.asarray(train_labels, dtype=np.int64)).to(device)
    val_on_device = torch.from_numpy(np.ascontiguousarray(val_images)).to(device)
    history = []
    step = 0
    for epoch in range(1, config.epochs + 1):
        network.train()
        started = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator)
        total_loss = torch.zeros((), device=device)
        seen = 0
        for first in range(0, len(order), config.batch_size):
            index = order[first : first + config.batch_size]
            if len(index) < 2:
                continue
            index = index.to(device)
            x = normalise(augment(images[index], config, generator), mean, std)
            x, target = mix_batch(x, labels[index], num_classes, generator, config.mix_probability)
            x = x.contiguous(memory_format=torch.channels_last)
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                logits = network(x)
            loss = F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss.detach() * len(index)
            seen += len(index)
            step += 1
        metrics = {"epoch": epoch, "loss": float(total_loss) / max(seen, 1)}
        metrics["train_images_per_s"] = seen / (time.perf_counter() - started)
        if epoch % config.validate_every == 0 or epoch == config.epochs:
            predictions = predict(network, val_on_device, mean, std, bf16=config.bf16)
            metrics["val_accuracy"] = float((predictions == val_labels).mean())
        metrics["seconds"] = time.perf_counter() - started
        history.append(metrics)
        if "val_accuracy" in metrics:
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
    images: np.ndarray | torch.Tensor,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    batch_size: int = 128,
    bf16: bool = False,
) -> np.ndarray:
    """Predicted class of each image, computed on the network's device.

    Args:
        images: ``uint8`` array or tensor ``[N, H, W, 3]``, fed at full size.

    Returns:
        ``int64`` array ``[N]``.
    """
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    pixels = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    out = []
    for first in range(0, len(pixels), batch_size):
        x = pixels[first : first + batch_size].to(device).permute(0, 3, 1, 2).float().div_(255)
        x = normalise(x, mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out.append(network(x).float().argmax(1).cpu())
    network.train(was_training)
    return torch.cat(out).numpy()
