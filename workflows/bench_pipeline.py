"""Benchmarks of the scene pipeline (issue figures; not timed tests).

    python -m workflows.bench_pipeline throughput   # end-to-end tiles/s against the bare forward, same tiles, same run
    python -m workflows.bench_pipeline memory       # peak RSS: 16384 x 16384 scene against 2048 x 2048, same settings
    python -m workflows.bench_pipeline memory --resample native   # the same without resampling: full batches in both

Scenes are mosaics of ``../shared/data/scenes/manila_oam_10cm.tif`` built in a
temporary folder. Everything runs in-process (``--scheduler in-process``) so
one process holds all the memory and all the time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT.parent / "shared" / "data" / "scenes" / "manila_oam_10cm.tif"


def bare_forward_seconds(plan, tiles: list[np.ndarray]) -> float:
    """Seconds of the network alone (preprocess + forward, no hooks) over ``tiles``, batched like the pipeline."""
    from geosal.models import load_from_spec

    model = load_from_spec(plan.spec)
    if plan.compile:
        network = torch.compile(model.network)
    else:
        network = model.network
    batches = [np.stack(tiles[i : i + plan.batch_size]) for i in range(0, len(tiles), plan.batch_size)]
    with torch.no_grad():
        network(model.preprocess(batches[0]))  # warm-up (and compilation)
        started = time.perf_counter()
        for batch in batches:
            network(model.preprocess(batch))
    return time.perf_counter() - started


def throughput(args) -> None:
    from geosal.config import load_config
    from geosal.pipeline import execute_scene, prepare_scene
    from geosal.pipeline.pass1 import read_block_pixels, runner_key
    from geosal.pipeline.runner import tile_runner
    from workflows.mosaic import mosaic

    with tempfile.TemporaryDirectory() as folder:
        scene = mosaic(SOURCE, Path(folder) / f"mosaic_{args.size}.tif", args.size)
        config = load_config(overrides={"compute": {"scheduler": "in-process", "compile": args.compile},
                                        "input": {"resample": args.resample}})
        prepared = prepare_scene(scene, Path(folder) / "out", config)
        plan = prepared.plan
        span = plan.tile + 2 * plan.halo
        warm_up = np.zeros((plan.batch_size, span, span, len(plan.scene.bands)), np.uint8)
        tile_runner(runner_key(plan)).raw_maps(warm_up)  # model construction and compilation are not throughput
        started = time.perf_counter()
        result = execute_scene(prepared, progress=False)
        total = time.perf_counter() - started
        tiles = []
        for index in range(plan.n_blocks):
            pixels, _ = read_block_pixels(plan, index)
            tiles += [pixels[r : r + span, c : c + span] for r, c in plan.tiles_in_block(index)]
        bare = bare_forward_seconds(plan, tiles)
    n = result.tiles
    print(f"scene {args.size}x{args.size} px at 0.1 m, working grid {plan.grid.width}x{plan.grid.height}, "
          f"{n} tiles of {plan.tile}+2x{plan.halo} px, batch {plan.batch_size}, compile={plan.compile}")
    print(f"  bare model forward on the same tiles: {n / bare:7.2f} tiles/s  ({bare:.1f} s)")
    print(f"  geosal end to end (pass 1, statistics, pass 2, COG/STAC export): {n / total:7.2f} tiles/s  ({total:.1f} s;"
          f" pass 1 {result.seconds['pass1']:.1f} s, pass 2 {result.seconds['pass2']:.1f} s, export {result.seconds['export']:.1f} s)")
    print(f"  ratio end to end / bare forward: {100 * bare / total:.1f}%   (pass 1 alone: {100 * bare / result.seconds['pass1']:.1f}%)")


def peak_rss_of_run(scene: Path, out: Path, compile: bool, resample: str) -> dict:
    """Run ``geosal run`` in-process in a child Python and return its peak RSS and time."""
    argv = ["run", str(scene), str(out), "--scheduler", "in-process", "--resample", resample] + (["--compile"] if compile else [])
    code = (
        "import json, resource, sys, time\n"
        "from geosal.cli import main\n"
        "t = time.perf_counter()\n"
        f"rc = main({argv!r})\n"
        "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t,"
        " 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(args) -> None:
    from workflows.mosaic import mosaic

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in (2048, args.size):
            scene = mosaic(SOURCE, Path(folder) / f"mosaic_{size}.tif", size)
            results[size] = peak_rss_of_run(scene, Path(folder) / f"out_{size}", args.compile, args.resample)
            print(f"  {size:6d} x {size:<6d} px: peak RSS {results[size]['peak_rss_mib']:8.0f} MiB, {results[size]['seconds']:.0f} s")
            scene.unlink()
    ratio = results[args.size]["peak_rss_mib"] / results[2048]["peak_rss_mib"]
    print(f"peak RSS ratio {args.size}^2 / 2048^2 = {ratio:.3f}  ({(args.size / 2048) ** 2:.0f}x the pixels)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=["throughput", "memory"])
    parser.add_argument("--size", type=int, default=None, help="mosaic side in pixels (throughput: 8192, memory: 16384)")
    parser.add_argument("--resample", default="auto", choices=["auto", "model", "native"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the network with the statistics in the graph")
    args = parser.parse_args(argv)
    if args.benchmark == "throughput":
        args.size = args.size or 8192
        throughput(args)
    else:
        args.size = args.size or 16384
        memory(args)


if __name__ == "__main__":
    main()
