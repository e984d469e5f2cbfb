"""Retraining throughput of ``geosal evaluate``: batched on-device augmentation against a per-image loop.

    python -m workflows.bench_training                       # CPU, the default retraining setting
    python -m workflows.bench_training --device cuda         # on a GPU
    python -m workflows.bench_training --network resnet18 --size 128

Both arms train the same network on the same UC Merced images for one epoch
at a time, alternating, ``--repeats`` times, and report the median epochs per
minute and their ratio, plus the augmentation alone in ms per batch:

- *per-image*: what a training script usually does, and what geosal did
  before: torchvision's ``resize`` / ``rot90`` / ``flip`` / colour functions
  called image by image in Python, then the batch stacked and copied to the
  device;
- *batched*: :func:`geosal.models.training.augment`, one affine grid per batch
  on the device the network trains on.

The images are decoded once and held in memory for both arms.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from geosal.evaluation.data import load_splits
from geosal.evaluation.paths import default_paths, project_root
from geosal.models import build_network
from geosal.models.device import native_bf16
from geosal.models.training import TrainingConfig, augment, normalise

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def per_image_augment(images: torch.Tensor, config: TrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """The per-image loop: ``uint8 [B, H, W, 3]`` (CPU) -> ``float32 [B, 3, crop, crop]`` in [0, 1] (CPU)."""
    batch, height, width, _ = images.shape
    out = torch.empty(batch, 3, config.crop, config.crop)
    rand = torch.rand(batch, 9, generator=generator)
    for i in range(batch):
        area = config.min_crop_area + (1 - config.min_crop_area) * rand[i, 0].item()
        aspect = math.exp((rand[i, 1].item() - 0.5) * 2 * math.log(config.max_aspect_ratio))
        h = min(height, round(math.sqrt(area * height * width / aspect)))
        w = min(width, round(math.sqrt(area * height * width * aspect)))
        top, left = int(rand[i, 2].item() * (height - h + 1)), int(rand[i, 3].item() * (width - w + 1))
        image = TF.resize(images[i, top : top + h, left : left + w].permute(2, 0, 1), [config.crop, config.crop], antialias=True)
        image = torch.rot90(image, int(rand[i, 4].item() * 4), dims=(1, 2))
        image = (image.flip(2) if rand[i, 5] < 0.5 else image).float().div_(255)
        j = config.colour_jitter
        image = TF.adjust_brightness(image, 1 + j * (2 * rand[i, 6].item() - 1))
        image = TF.adjust_contrast(image, 1 + j * (2 * rand[i, 7].item() - 1))
        out[i] = TF.adjust_saturation(image, 1 + j * (2 * rand[i, 8].item() - 1)).clamp_(0, 1)
    return out


def epoch_seconds(network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainingConfig,
                  batched: bool, device: torch.device, seed: int) -> float:
    """Wall seconds of one training epoch (SGD; bfloat16 autocast where the device has it, as the evaluation trains)."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
    network.train()
    on_device = images.to(device) if batched else images
    labels = labels.to(device)
    order = torch.randperm(len(images), generator=generator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for first in range(0, len(order), config.batch_size):
        index = order[first : first + config.batch_size]
        if batched:
            x = augment(on_device[index.to(device)], config, generator)
        else:
            x = per_image_augment(images[index], config, generator).to(device)
        x = normalise(x, MEAN, STD).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
            loss = F.cross_entropy(network(x).float(), labels[index.to(device)])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def augment_ms(images: torch.Tensor, config: TrainingConfig, batched: bool, device: torch.device, batches: int = 10) -> float:
    """Milliseconds per batch of the augmentation alone (median of ``batches``)."""
    generator = torch.Generator().manual_seed(0)
    source = images[: config.batch_size]
    on_device = source.to(device)
    times = []
    for _ in range(batches):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        x = augment(on_device, config, generator) if batched else per_image_augment(source, config, generator).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        del x
    return 1000 * statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(default_paths(project_root())["data"]))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--network", default="resnet10")
    parser.add_argument("--size", type=int, default=64, help="image side, px (the crop is 7/8 of it)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=0, help="training images used (0: all)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    train, _ = load_splits(args.data)
    decoded = train.decode(args.size)
    count = args.images or len(decoded)
    images = torch.from_numpy(np.ascontiguousarray(decoded[:count]))
    labels = torch.from_numpy(train.labels[:count])
    config = TrainingConfig(crop=max(8, round(args.size * 7 / 8)), min_crop_area=0.5, colour_jitter=0.2,
                            batch_size=args.batch_size, bf16=native_bf16(args.device))
    torch.manual_seed(0)
    network = build_network(args.network, int(train.labels.max()) + 1).to(device=device, memory_format=torch.channels_last)
    print(f"{args.network} at {args.size} px, {count} images, batch {args.batch_size}, {device} "
          f"({torch.get_num_threads()} threads, {'bfloat16' if config.bf16 else 'float32'}); "
          f"{args.repeats} alternating repeats after a warm-up epoch of each")
    for batched in (False, True):
        epoch_seconds(network, images, labels, config, batched, device, seed=99)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(args.repeats):
        for batched in ((False, True) if repeat % 2 == 0 else (True, False)):
            seconds[batched].append(epoch_seconds(network, images, labels, config, batched, device, seed=repeat))
    loop, batch = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(f"per-image loop: {60 / loop:6.2f} epochs/min ({loop:.2f} s/epoch; augmentation "
          f"{augment_ms(images, config, False, device):.1f} ms/batch)")
    print(f"batched:        {60 / batch:6.2f} epochs/min ({batch:.2f} s/epoch; augmentation "
          f"{augment_ms(images, config, True, device):.1f} ms/batch)")
    print(f"batched / per-image epochs per minute: {loop / batch:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
