"""Write the model card of the shipped UC Merced model from its measured metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from geosal.models import ModelSpec


def confusion_table(matrix: list[list[int]], classes: list[str]) -> str:
    """Markdown confusion matrix: rows true class, columns predicted (numbered like the rows)."""
    header = "| true \\ predicted | " + " | ".join(str(i) for i in range(len(classes))) + " |"
    rule = "|---|" + "---|" * len(classes)
    rows = [
        f"| {i} {name} | " + " | ".join(str(v) if v else "." for v in row) + " |"
        for i, (name, row) in enumerate(zip(classes, matrix))
    ]
    return "\n".join([header, rule, *rows])


def _contention_note(metrics: dict) -> str:
    """Say how long the run takes alone when the recorded one shared the machine."""
    fastest = metrics.get("epoch_seconds_fastest_quartile")
    if not fastest:
        return ""
    alone = fastest * metrics["config"]["epochs"] / 60
    if alone > 0.8 * metrics["training_minutes"]:
        return ""
    return (f"; the machine was shared with other jobs during this run: epochs without contention took "
            f"{fastest:.0f} s, about {alone:.0f} min for the whole run")


def write_model_card(path: Path, spec: ModelSpec, metrics: dict, args: argparse.Namespace) -> None:
    """Write ``path`` (Markdown) describing the model, its data, accuracy and provenance."""
    classes = metrics["classes"]
    matrix = metrics["confusion_matrix"]
    per_class = [row[i] / max(sum(row), 1) for i, row in enumerate(matrix)]
    worst = sorted(zip(per_class, classes))[:4]
    config = metrics["config"]
    command = (
        f"python -m workflows.train_ucmerced --epochs {config['epochs']} --batch-size {config['batch_size']} "
        f"--crop {config['crop']} --lr {config['lr']} --seed {config['seed']} --image-size {spec.input_size} --export"
    )
    text = f"""# Model card: ucmerced-resnet18

The default model of geosal: a torchvision **{spec.architecture}** trained from
scratch (no pretrained weights) on UC Merced Land Use, so that saliency maps
of overhead imagery work out of the box and offline.

| | |
|---|---|
| architecture | torchvision `{spec.architecture}`, {spec.num_classes} outputs |
| weights file | `ucmerced_resnet18.pt`, float16 state dict in a geosal checkpoint (`torch.load(weights_only=True)`) |
| input | RGB, {spec.input_size} x {spec.input_size} pixels at training time (any size works: global pooling) |
| ground sample distance | {spec.gsd_m} m per pixel (UC Merced's 0.3048 m resized from 256 to {spec.input_size} px) |
| normalisation | pixels / 255, then mean {list(spec.mean)}, std {list(spec.std)} (measured on the training split) |
| validation accuracy | **{100 * metrics['validation_accuracy']:.1f}%** top-1 on {metrics['validation_images']} images (float16 weights, full images, no test-time augmentation) |
| training time | {metrics['training_minutes']} min wall time on 2 CPU cores (bfloat16 autocast){_contention_note(metrics)} |
| saliency monitoring cost | {100 * metrics['saliency_monitoring_share']:.2f}% of training time (SMOE maps of 8 validation images every epoch) |

## Data and split

UC Merced Land Use (Yang and Newsam, ACM SIGSPATIAL 2010), the 80-images-per-class
subset in `../shared/data/ucmerced`: 21 classes of 256 x 256 aerial RGB patches
from the USGS National Map Urban Area Imagery. Split fixed by file name: within
each class, sorted by name, every fifth image (positions 4, 9, 14, ...) is
validation, the rest training: {metrics['training_images']} training and
{metrics['validation_images']} validation images (16 per class).

## Training

SGD with Nesterov momentum 0.9, peak learning rate {config['lr']} (linear warm-up
{config['warmup_epochs']} epochs, cosine decay), batch {config['batch_size']},
{config['epochs']} epochs, weight decay {config['weight_decay']}, label smoothing
{config['label_smoothing']}. Augmentation: random resized crops of {config['crop']} px
(area {config['min_crop_area']}-1), random 90-degree rotations, horizontal flips,
brightness / contrast / saturation jitter of {config['colour_jitter']}, and MixUp or
CutMix on {int(100 * config['mix_probability'])}% of batches.

Reproduce (about {metrics['training_minutes']:.0f} minutes on a 2-core CPU):

```
{command}
```

## Accuracy

Top-1 validation accuracy {100 * metrics['validation_accuracy']:.1f}%. Weakest classes:
{", ".join(f"{name} {100 * acc:.0f}%" for acc, name in worst)}.

Classes (output order): {", ".join(f"{i} {c}" for i, c in enumerate(classes))}.

Confusion matrix on the validation split (rows: true class, columns: predicted):

{confusion_table(matrix, classes)}

## Intended use and limits

A land-use classifier at about 0.4 m per pixel whose main job in geosal is to
be explained: its saliency maps show what a CNN trained on overhead imagery
attends to. It was trained on 1,344 images of one region and sensor
(US urban areas, USGS orthophotos); expect lower accuracy elsewhere, and
resample imagery to about 0.4 m (geosal does this by default).

## Licence notes

UC Merced imagery: USGS National Map, public domain. The weights were trained
by the geosal project and are distributed with it under the project's licence.
"""
    path.write_text(text)
