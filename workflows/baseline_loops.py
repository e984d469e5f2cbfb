"""What a user would write instead of geosal: the baselines of ``workflows/bench_pipeline.py``.

    python -m workflows.baseline_loops plain SCENE OUT.tif [--model ...] [--gsd M | --native]
    python -m workflows.baseline_loops gradcam SCENE OUT.tif [...]

Both read the scene exactly as geosal does (the same working grid: the scene
resampled to the model's ground sample distance with GDAL's ``average``; tiles
of ``--tile`` pixels with a ``--halo`` read around them, edge-padded at the
scene's border; batches of ``--batch`` tiles; the same model and normalisation)
and write one GeoTIFF:

- ``plain``: a plain tiled inference loop, the per-tile predicted class (uint8,
  one pixel per tile): what running the model over the scene costs anyway;
- ``gradcam``: a per-tile Grad-CAM loop with pytorch-grad-cam on the last
  convolutional stage, tile cores stitched into a tiled float32 map on the
  working grid: the usual way to get a saliency map of a whole scene.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.windows import Window

from geosal.models import load_model
from geosal.saliency import find_scale_layers


def working_shape(dataset, gsd: float | None) -> tuple[int, int]:
    """Rows and columns of the working grid: the scene at ``gsd`` metres per pixel (None: native)."""
    if gsd is None:
        return dataset.height, dataset.width
    x_res, y_res = abs(dataset.transform.a), abs(dataset.transform.e)
    metres = dataset.crs.linear_units_factor[1]
    return max(1, round(dataset.height * y_res * metres / gsd)), max(1, round(dataset.width * x_res * metres / gsd))


def read_tile(dataset, shape: tuple[int, int], row: int, col: int, size: int) -> np.ndarray:
    """``[size, size, bands]`` uint8 of the working grid from ``(row, col)``, average-resampled, edge-padded."""
    height, width = shape
    r0, r1, c0, c1 = max(row, 0), min(row + size, height), max(col, 0), min(col + size, width)
    sy, sx = dataset.height / height, dataset.width / width
    window = Window(c0 * sx, r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy)
    data = dataset.read([1, 2, 3], window=window, out_shape=(3, r1 - r0, c1 - c0), resampling=Resampling.average)
    padded = np.pad(data, ((0, 0), (r0 - row, row + size - r1), (c0 - col, col + size - c1)), mode="edge")
    return np.moveaxis(padded, 0, -1)


def tiles(shape: tuple[int, int], tile: int) -> list[tuple[int, int]]:
    return [(r, c) for r in range(0, shape[0], tile) for c in range(0, shape[1], tile)]


def plain(args) -> None:
    model = load_model(args.model, device=args.device, **_overrides(args))
    with rasterio.open(args.scene) as dataset:
        shape = working_shape(dataset, args.gsd if not args.native else None)
        origins = tiles(shape, args.tile)
        classes = np.zeros((math.ceil(shape[0] / args.tile), math.ceil(shape[1] / args.tile)), np.uint8)
        with torch.inference_mode():
            for first in range(0, len(origins), args.batch):
                batch = origins[first : first + args.batch]
                pixels = np.stack([read_tile(dataset, shape, r - args.halo, c - args.halo, args.tile + 2 * args.halo)
                                   for r, c in batch])
                predicted = model.network(model.preprocess(pixels)).argmax(1).cpu().numpy()
                for (r, c), label in zip(batch, predicted):
                    classes[r // args.tile, c // args.tile] = label
        transform = dataset.transform * dataset.transform.scale(dataset.width / shape[1] * args.tile,
                                                                 dataset.height / shape[0] * args.tile)
        profile = {"driver": "GTiff", "width": classes.shape[1], "height": classes.shape[0], "count": 1, "dtype": "uint8",
                   "crs": dataset.crs, "transform": transform}
    with rasterio.open(args.out, "w", **profile) as out:
        out.write(classes, 1)


def gradcam(args) -> None:
    from pytorch_grad_cam import GradCAM

    model = load_model(args.model, device=args.device, **_overrides(args))
    network = model.network
    target = args.target or find_scale_layers(network, (1, 3, 224, 224))[-1]  # the last stage: layer4 for a ResNet
    cam = GradCAM(model=network, target_layers=[network.get_submodule(target)])
    with rasterio.open(args.scene) as dataset:
        shape = working_shape(dataset, args.gsd if not args.native else None)
        transform = dataset.transform * dataset.transform.scale(dataset.width / shape[1], dataset.height / shape[0])
        profile = {"driver": "GTiff", "width": shape[1], "height": shape[0], "count": 1, "dtype": "float32",
                   "crs": dataset.crs, "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
                   "compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER"}
        origins = tiles(shape, args.tile)
        with rasterio.open(args.out, "w", **profile) as out:
            for first in range(0, len(origins), args.batch):
                batch = origins[first : first + args.batch]
                pixels = np.stack([read_tile(dataset, shape, r - args.halo, c - args.halo, args.tile + 2 * args.halo)
                                   for r, c in batch])
                maps = cam(input_tensor=model.preprocess(pixels), targets=None)
                for (r, c), saliency in zip(batch, maps):
                    rows, cols = min(args.tile, shape[0] - r), min(args.tile, shape[1] - c)
                    core = saliency[args.halo : args.halo + rows, args.halo : args.halo + cols]
                    out.write(core.astype(np.float32), 1, window=Window(c, r, cols, rows))


def _overrides(args) -> dict:
    return {"factory": args.model_factory} if args.model_factory else {}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("loop", choices=["plain", "gradcam"])
    parser.add_argument("scene")
    parser.add_argument("out")
    parser.add_argument("--model", default=None, help="as geosal's --model (default: the shipped model)")
    parser.add_argument("--model-factory", default=None)
    parser.add_argument("--target", default=None, help="Grad-CAM layer (default: the last stage, layer4 for a ResNet)")
    parser.add_argument("--gsd", type=float, default=0.406, help="working ground sample distance in metres")
    parser.add_argument("--native", action="store_true", help="no resampling")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--halo", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    (plain if args.loop == "plain" else gradcam)(args)
    print(f"{args.loop}: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
