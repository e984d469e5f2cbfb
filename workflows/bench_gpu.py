"""Precision and speed of the saliency forward on the pipeline's own tiles, on a GPU.

    python -m workflows.bench_gpu [--device cuda] [--batch 16] [--rounds 10] [--json OUT.json] [--compare]

Real tiles (a mosaic of the Manila scene at native resolution, cut with the
pipeline's tile and halo) go through the shipped model's :class:`TileRunner`
at each precision (float32, tf32, bf16, fp16 autocast; the statistics are
float32 in every case): milliseconds per batch (the maps back on the CPU,
medians over ``--rounds``), the bare forward for comparison, and for each
scale the correlation of the maps with a CPU float32 reference (target >= 0.99)
and the count of non-finite values (target 0). ``--device cpu`` runs the same
on the CPU (what ``workflows/gpu_check.py --dry-run`` does in CI). ``--compare``
then runs :mod:`workflows.bench_pipeline`'s comparison (plain tiled inference,
per-tile Grad-CAM, geosal in-process and on a local cluster, with the shipped
model and with a tiny network) on the same device.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT.parent / "shared" / "data" / "scenes" / "manila_oam_10cm.tif"
PRECISIONS = ("none", "tf32", "bf16", "fp16")


def pipeline_tiles(size: int, tile: int, halo: int, count: int) -> np.ndarray:
    """``count`` real tiles ``[count, tile + 2 halo, tile + 2 halo, 3]`` uint8, cut as pass 1 cuts them."""
    from geosal.config import load_config
    from geosal.pipeline import prepare_scene
    from geosal.pipeline.pass1 import read_block_input
    from workflows.mosaic import mosaic

    with tempfile.TemporaryDirectory() as folder:
        scene = mosaic(SOURCE, Path(folder) / "mosaic.tif", size)
        config = load_config(overrides={"input": {"resample": "native"}, "tiling": {"tile": tile, "halo": halo}})
        prepared = prepare_scene(scene, Path(folder) / "out", config)
        plan, span, tiles = prepared.plan, tile + 2 * halo, []
        for index in range(plan.n_blocks):
            pixels = read_block_input(prepared.job, index).model_input
            tiles += [pixels[r : r + span, c : c + span] for r, c in plan.tiles_in_block(index)]
            if len(tiles) >= count:
                break
    return np.stack(tiles[:count])


def _seconds(function, rounds: int, synchronize) -> float:
    function()
    synchronize()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        function()
        synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(device: str, batch: int, rounds: int, size: int, tile: int, halo: int, precisions=PRECISIONS) -> dict:
    """The measurements as a dict (see the module docstring)."""
    from geosal.models import load_model
    from geosal.pipeline.runner import RunnerKey, TileRunner
    from geosal.saliency import find_scale_layers

    tiles = pipeline_tiles(size, tile, halo, batch)
    model = load_model()
    spec = model.spec
    layers = tuple(find_scale_layers(model.network, (1, 3, tiles.shape[1], tiles.shape[2])))
    reference = TileRunner(RunnerKey(spec, layers, "smoe_scale", "none", "cpu", False)).raw_maps(tiles)
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    results = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu", "batch": batch,
               "tile": tiles.shape[1], "precisions": {}}
    for precision in precisions:
        runner = TileRunner(RunnerKey(spec, layers, "smoe_scale", precision, device, False))
        maps = runner.raw_maps(tiles)
        with_maps = _seconds(lambda runner=runner: runner.raw_maps(tiles), rounds, synchronize)

        def bare(runner=runner, precision=precision):
            with torch.no_grad(), runner._autocast(precision):
                runner.model.network(runner.model.preprocess(tiles))

        forward = _seconds(bare, rounds, synchronize)
        results["precisions"][precision] = {
            "ms_per_batch": 1000 * with_maps,
            "bare_forward_ms_per_batch": 1000 * forward,
            "tiles_per_second": batch / with_maps,
            "correlation_to_cpu_float32": [float(np.corrcoef(ours.ravel(), theirs.ravel())[0, 1])
                                           for ours, theirs in zip(maps, reference)],
            "non_finite": int(sum((~np.isfinite(m)).sum() for m in maps)),
            "fp32_retries": runner.fp32_retries,
        }
    return results


def print_table(results: dict) -> None:
    print(f"{results['device']}: batch {results['batch']} tiles of {results['tile']} px, shipped ResNet-18")
    print(f"{'precision':10s} {'ms/batch':>9s} {'bare fwd':>9s} {'tiles/s':>8s} {'min corr':>9s} {'non-finite':>10s}")
    for name, row in results["precisions"].items():
        print(f"{name:10s} {row['ms_per_batch']:9.1f} {row['bare_forward_ms_per_batch']:9.1f} {row['tiles_per_second']:8.1f} "
              f"{min(row['correlation_to_cpu_float32']):9.4f} {row['non_finite']:10d}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096, help="mosaic side the tiles are cut from")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--halo", type=int, default=64)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--json", type=Path, help="also write the measurements to this file")
    parser.add_argument("--compare", action="store_true", help="then the whole-process comparison on the same device")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible; run this on a GPU machine (or --device cpu)", file=sys.stderr)
        return 2
    results = run(args.device, args.batch, args.rounds, args.size, args.tile, args.halo, args.precisions)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.compare:
        from workflows import bench_pipeline

        for tiny in ([], ["--tiny"]):
            bench_pipeline.main(["compare", "--device", args.device, *tiny])
    return 0


if __name__ == "__main__":
    sys.exit(main())
