"""Train the shipped overhead-imagery model: a ResNet-18 from scratch on UC Merced.

    python -m workflows.train_ucmerced --out runs/ucmerced --export

Data: ``../shared/data/ucmerced`` (21 land-use classes x 80 aerial images,
256 x 256 at about 0.3 m). Images are resized once to 192 x 192 (0.4064 m per
pixel), and split with :func:`geosal.data.split_every_nth`: within each class,
sorted by file name, every fifth image (positions 4, 9, ...) is validation:
1,344 training and 336 validation images.

Every epoch the SMOE saliency of a fixed batch of eight validation images is
computed and saved as a PNG (the paper's "we already use it automatically when
training networks"), and its cost is reported as a share of the epoch time.

``--export`` writes the float16 checkpoint and its model card into
``geosal/models/weights/``; the accuracy in the card is measured on the
exported (float16-rounded) weights.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from geosal.data import load_labelled_folder, split_every_nth
from geosal.models import ModelSpec, build_network, load_model, save_checkpoint
from geosal.models.device import native_bf16
from geosal.models.loader import shipped_checkpoint
from geosal.models.training import TrainingConfig, predict, train_classifier
from geosal.saliency import SaliencyMaps

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = PROJECT.parent / "shared" / "data" / "ucmerced"
UC_MERCED_GSD_M = 0.3048  # one foot per pixel at 256 x 256
SALIENCY_BATCH = [0, 16, 48, 96, 144, 192, 256, 320]  # validation indices: eight different classes


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="UC Merced folder (one sub-folder per class)")
    parser.add_argument("--out", type=Path, default=PROJECT / "runs" / "ucmerced", help="run folder for logs, saliency images, metrics")
    parser.add_argument("--image-size", type=int, default=192, help="side the 256 px images are resized to (sets the GSD)")
    parser.add_argument("--architecture", default="resnet18", help="torchvision ResNet to train from scratch")
    parser.add_argument("--epochs", type=int, default=TrainingConfig.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--crop", type=int, default=TrainingConfig.crop, help="training crop side in pixels")
    parser.add_argument("--lr", type=float, default=TrainingConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainingConfig.seed)
    parser.add_argument("--no-bf16", action="store_true", help="train in float32 instead of bfloat16 autocast (used only on CPUs "
                        "with AVX512-BF16 or AMX)")
    parser.add_argument("--export", action="store_true", help="write the checkpoint and model card into the package")
    return parser.parse_args(argv)


def channel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of ``uint8`` images ``[N, H, W, 3]`` scaled to [0, 1] (float64 sums)."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255
    return tuple(round(float(v), 4) for v in x.mean(0)), tuple(round(float(v), 4) for v in x.std(0))


class SaliencyMonitor:
    """Epoch callback: SMOE saliency of a fixed validation batch, saved as a PNG, timed."""

    def __init__(self, images: np.ndarray, mean, std, folder: Path):
        self.images = images
        self.mean, self.std = mean, std
        self.folder = folder
        self.seconds: list[float] = []
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, epoch: int, network: torch.nn.Module, metrics: dict) -> None:
        started = time.perf_counter()
        was_training = network.training
        network.eval()
        x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float() / 255
        x = (x - torch.tensor(self.mean).view(1, 3, 1, 1)) / torch.tensor(self.std).view(1, 3, 1, 1)
        result = SaliencyMaps(network, layers=["relu", "layer1", "layer2", "layer3", "layer4"])(x)
        network.train(was_training)
        elapsed = time.perf_counter() - started
        self.seconds.append(elapsed)
        metrics["saliency_seconds"] = elapsed
        save_saliency_grid(self.images, result.combined.numpy(), result.lovi().numpy(), self.folder / f"epoch_{epoch:03d}.png", epoch)


def save_saliency_grid(images: np.ndarray, combined: np.ndarray, lovi: np.ndarray, path: Path, epoch: int) -> None:
    """Rows: the images, the combined maps, LOVI. ``images`` uint8 ``[N, H, W, 3]``,
    ``combined`` ``[N, H, W]`` in [0, 1], ``lovi`` ``[N, 3, H, W]`` in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    figure, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.0))
    for i in range(n):
        axes[0, i].imshow(images[i])
        axes[1, i].imshow(combined[i], cmap="magma", vmin=0, vmax=1)
        axes[2, i].imshow(lovi[i].transpose(1, 2, 0))
        for row in range(3):
            axes[row, i].axis("off")
    figure.suptitle(f"epoch {epoch}: images, combined SMOE saliency, LOVI")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``[classes, classes]`` counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = load_labelled_folder(args.data, size=args.image_size)
    train_idx, val_idx = split_every_nth(data)
    train, val = data.subset(train_idx), data.subset(val_idx)
    mean, std = channel_statistics(train.images)
    print(f"{len(train)} training / {len(val)} validation images, {len(data.classes)} classes; mean {mean} std {std}")

    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, crop=args.crop, lr=args.lr, seed=args.seed,
                            bf16=not args.no_bf16 and native_bf16("cpu"))
    torch.manual_seed(args.seed)  # the initial weights follow --seed
    network = build_network(args.architecture, num_classes=len(data.classes))
    monitor = SaliencyMonitor(val.images[SALIENCY_BATCH], mean, std, args.out / "saliency")
    log_file = (args.out / "train.log").open("w")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    started = time.perf_counter()
    history = train_classifier(network, train.images, train.labels, val.images, val.labels, mean, std, config, monitor, log)
    training_minutes = (time.perf_counter() - started) / 60
    epoch_seconds = sum(h["seconds"] for h in history)
    saliency_share = sum(monitor.seconds) / (epoch_seconds + sum(monitor.seconds))
    log(f"trained in {training_minutes:.1f} min; SMOE monitoring took {100 * saliency_share:.2f}% of training time")

    gsd = UC_MERCED_GSD_M * 256 / args.image_size
    spec = ModelSpec(
        architecture=args.architecture, num_classes=len(data.classes), classes=tuple(data.classes),
        mean=mean, std=std, gsd_m=round(gsd, 4), input_size=args.image_size,
    )
    checkpoint = args.out / "model.pt"
    save_checkpoint(checkpoint, network, spec.to_dict())
    reloaded = load_model(str(checkpoint))  # accuracy of the float16-rounded weights
    predicted = predict(reloaded.network, val.images, mean, std)
    accuracy = float((predicted == val.labels).mean())
    matrix = confusion_matrix(val.labels, predicted, len(data.classes))
    metrics = {
        "validation_accuracy": accuracy,
        "validation_images": len(val),
        "training_images": len(train),
        "training_minutes": round(training_minutes, 1),
        "saliency_monitoring_share": round(saliency_share, 4),
        "confusion_matrix": matrix.tolist(),
        "classes": data.classes,
        "config": asdict(config),
        "image_size": args.image_size,
        "history": history,
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log(f"validation accuracy (float16 weights, full {args.image_size} px images): {accuracy:.4f}")
    if args.export:
        export(checkpoint, spec, metrics, args)


def export(checkpoint: Path, spec: ModelSpec, metrics: dict, args: argparse.Namespace) -> None:
    """Copy the checkpoint into the package and write its model card and metrics."""
    target = shipped_checkpoint("ucmerced-resnet18")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(checkpoint.read_bytes())
    summary = {k: v for k, v in metrics.items() if k != "history"}
    epoch_seconds = sorted(h["seconds"] + h.get("saliency_seconds", 0.0) for h in metrics["history"])
    summary["epoch_seconds_fastest_quartile"] = round(float(np.median(epoch_seconds[: max(1, len(epoch_seconds) // 4)])), 1)
    target.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    from workflows.model_card import write_model_card

    write_model_card(target.with_suffix(".md"), spec, summary, args)
    print(f"exported {target} ({target.stat().st_size / 1e6:.1f} MB) with its model card")


if __name__ == "__main__":
    main()
