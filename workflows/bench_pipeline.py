"""Benchmarks of the scene pipeline against what a user would otherwise run (figures, not timed tests).

    python -m workflows.bench_pipeline compare     # whole processes, alternating: plain tiled inference, per-tile
                                                   # Grad-CAM, geosal in-process, geosal on its default local cluster
    python -m workflows.bench_pipeline compare --tiny        # the same with a tiny network (the regime of a GPU)
    python -m workflows.bench_pipeline breakdown   # stages, serial client time and output bytes against scene size
    python -m workflows.bench_pipeline throughput  # end-to-end tiles/s against the bare forward on the same tiles
    python -m workflows.bench_pipeline memory      # peak RSS: 16384 x 16384 scene against 2048 x 2048

Scenes are mosaics of ``../shared/data/scenes/manila_oam_10cm.tif`` (10 cm) built in a temporary folder; by
default they are resampled to the model's 0.406 m, as geosal does (``--native``: no resampling). Every
comparison alternates the variants within each repetition and reports medians and ratios to the plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT.parent / "shared" / "data" / "scenes" / "manila_oam_10cm.tif"
MODEL_GSD = 0.406
TINY_FACTORY = "workflows.tiny_network:build"


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def variants(scene: Path, out: Path, native: bool, tiny: Path | None, device: str = "cpu") -> dict[str, list[str]]:
    """The four commands compared, each a whole process as a user would start it."""
    model = (["--model", str(tiny), "--model-factory", TINY_FACTORY] if tiny else []) + ["--device", device]
    loop_grid = ["--native"] if native else ["--gsd", str(MODEL_GSD)]
    geosal_grid = ["--resample", "native"] if native else (["--gsd", str(MODEL_GSD), "--resample", "model"] if tiny else [])
    geosal = _python("-m", "geosal.cli", "run", str(scene), str(out / "geosal"), "--overwrite", *model, *geosal_grid)
    return {
        "plain loop": _python("-m", "workflows.baseline_loops", "plain", str(scene), str(out / "plain.tif"), *model, *loop_grid),
        "Grad-CAM loop": _python("-m", "workflows.baseline_loops", "gradcam", str(scene), str(out / "gradcam.tif"),
                                 *model, *loop_grid),
        "geosal in-process": [*geosal, "--scheduler", "in-process"],
        "geosal local cluster": geosal,
    }


def timed(command: list[str]) -> float:
    """Wall seconds of ``command`` run from the project root (its output discarded; a failure raises with
    the end of its stderr)."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} ... failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started


def compare(args) -> None:
    from workflows.mosaic import mosaic

    cases = [(size, False) for size in args.sizes] + [(args.native_size, True)] * (args.native_size > 0)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        tiny = None
        if args.tiny:
            from workflows.tiny_network import save

            tiny = folder / "tiny.pt"
            save(tiny)
        for size, native in cases:
            scene = mosaic(SOURCE, folder / f"mosaic_{size}.tif", size)
            (folder / "out").mkdir(exist_ok=True)
            commands = variants(scene, folder / "out", native, tiny, args.device)
            names = list(commands)
            times: dict[str, list[float]] = {name: [] for name in names}
            for repeat in range(args.repeats):
                order = names[repeat % len(names):] + names[: repeat % len(names)]  # rotate who goes first
                for name in order:
                    times[name].append(timed(commands[name]))
            working = _working_pixels(scene, native)
            label = f"{size}^2 mosaic, {'native 0.1 m' if native else f'resampled to {MODEL_GSD} m'}, " \
                    f"{'tiny network' if tiny else 'shipped ResNet-18'}: {working / 1e6:.1f} working Mpx, {args.repeats} repeats"
            base = statistics.median(times["plain loop"])
            print(label)
            for name in names:
                median = statistics.median(times[name])
                print(f"  {name:22s} {median:7.2f} s  {median / base:5.2f}x plain  {working / 1e6 / median:7.2f} Mpx/s   "
                      f"(runs: {', '.join(f'{t:.2f}' for t in times[name])})")
            gradcam = statistics.median(times["Grad-CAM loop"])
            print(f"  Grad-CAM loop / geosal in-process: {gradcam / statistics.median(times['geosal in-process']):.2f}x; "
                  f"/ geosal local cluster: {gradcam / statistics.median(times['geosal local cluster']):.2f}x")
            scene.unlink()


def _working_pixels(scene: Path, native: bool) -> int:
    import rasterio

    with rasterio.open(scene) as dataset:
        if native:
            return dataset.width * dataset.height
        scale = abs(dataset.transform.a) / MODEL_GSD
        return round(dataset.width * scale) * round(dataset.height * scale)


def breakdown(args) -> None:
    """Stages of geosal in-process, the serial client time and the bytes written, against scene size."""
    from workflows.mosaic import mosaic

    print(f"{'scene':>7s} {'working Mpx':>11s} {'plan':>6s} {'pass 1':>7s} {'stats':>6s} {'pass 2+ovr':>10s} {'export':>7s} "
          f"{'client serial':>13s} {'bytes/working px':>16s}")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            scene = mosaic(SOURCE, Path(folder) / f"mosaic_{size}.tif", size)
            code = (
                "import json, sys\n"
                "from geosal.config import load_config\n"
                "from geosal.pipeline import run_scene\n"
                "config = load_config(overrides={'compute': {'scheduler': 'in-process'}, "
                f"'input': {{'resample': {args.resample!r}}}}})\n"
                f"result = run_scene({str(scene)!r}, {str(Path(folder) / 'out')!r}, config, overwrite=True, progress=False)\n"
                "print(json.dumps({'seconds': result.seconds, 'folder': str(result.output)}))\n"
            )
            done = subprocess.run(_python("-c", code), cwd=PROJECT, capture_output=True, text=True, check=True)
            report = json.loads(done.stdout.strip().splitlines()[-1])
            s, out = report["seconds"], Path(report["folder"])
            working = _working_pixels(scene, args.resample == "native")
            written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            serial = s["plan"] + s["statistics"] + s["export"]
            print(f"{size:>6d}² {working / 1e6:11.1f} {s['plan']:6.2f} {s['pass1']:7.2f} {s['statistics']:6.2f} "
                  f"{s['pass2']:10.2f} {s['export']:7.2f} {serial:10.2f} s {written / working:16.2f}")
            scene.unlink()


def bare_forward_seconds(prepared, tiles) -> float:
    """Seconds of the network alone (preprocess + forward, no hooks) over ``tiles``, batched like the pipeline."""
    import numpy as np
    import torch

    from geosal.models import load_from_spec
    from geosal.models.device import resolve_device

    job = prepared.job
    device = resolve_device(job.settings.device)
    model = load_from_spec(job.plan.spec, device)
    batch = job.settings.batch_size
    batches = [np.stack(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.no_grad():
        model.network(model.preprocess(batches[0]))  # warm-up
        synchronize()
        started = time.perf_counter()
        for pixels in batches:
            model.network(model.preprocess(pixels))
        synchronize()
    return time.perf_counter() - started


def throughput(args) -> None:
    from geosal.config import load_config
    from geosal.pipeline import InProcessExecutor, execute_scene, prepare_scene, runner_key
    from geosal.pipeline.pass1 import read_block_input
    from workflows.mosaic import mosaic

    with tempfile.TemporaryDirectory() as folder:
        size = args.sizes[0]
        scene = mosaic(SOURCE, Path(folder) / f"mosaic_{size}.tif", size)
        config = load_config(overrides={"compute": {"scheduler": "in-process", "device": args.device},
                                        "input": {"resample": args.resample}})
        prepared = prepare_scene(scene, Path(folder) / "out", config)
        executor = InProcessExecutor()
        executor.runners.get(runner_key(prepared.job))  # model construction is not throughput
        started = time.perf_counter()
        result = execute_scene(prepared, executor, progress=False)
        total = time.perf_counter() - started
        plan, span = prepared.plan, prepared.plan.tile + 2 * prepared.plan.halo
        tiles = []
        for index in range(plan.n_blocks):
            pixels = read_block_input(prepared.job, index).model_input
            tiles += [pixels[r : r + span, c : c + span] for r, c in plan.tiles_in_block(index)]
        bare = bare_forward_seconds(prepared, tiles)
    n = result.tiles
    print(f"scene {size}^2 px, working grid {plan.grid.width}x{plan.grid.height}, {n} tiles of {plan.tile}+2x{plan.halo} px, "
          f"device {args.device}")
    print(f"  bare model forward on the same tiles: {n / bare:7.2f} tiles/s  ({bare:.1f} s)")
    print(f"  geosal end to end: {n / total:7.2f} tiles/s  ({total:.1f} s: " +
          ", ".join(f"{k} {v:.2f} s" for k, v in result.seconds.items() if k != "total") + ")")
    print(f"  end to end / bare forward: {bare / total:.2f}   (pass 1 alone: {bare / result.seconds['pass1']:.2f})")


def peak_rss_of_run(scene: Path, out: Path, resample: str) -> dict:
    """Run ``geosal run`` in-process in a child Python and return its peak RSS and time."""
    argv = ["run", str(scene), str(out), "--scheduler", "in-process", "--resample", resample]
    code = (
        "import json, resource, time\n"
        "from geosal.cli import main\n"
        "t = time.perf_counter()\n"
        f"rc = main({argv!r})\n"
        "print(json.dumps({'rc': rc, 'seconds': time.perf_counter() - t,"
        " 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run(_python("-c", code), cwd=PROJECT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(args) -> None:
    from workflows.mosaic import mosaic

    small, large = 2048, args.sizes[-1]
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in (small, large):
            scene = mosaic(SOURCE, Path(folder) / f"mosaic_{size}.tif", size)
            results[size] = peak_rss_of_run(scene, Path(folder) / f"out_{size}", args.resample)
            print(f"  {size:6d} x {size:<6d} px: peak RSS {results[size]['peak_rss_mib']:8.0f} MiB, {results[size]['seconds']:.0f} s")
            scene.unlink()
    ratio = results[large]["peak_rss_mib"] / results[small]["peak_rss_mib"]
    print(f"peak RSS ratio {large}^2 / {small}^2 = {ratio:.3f}  ({(large / small) ** 2:.0f}x the pixels)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=["compare", "breakdown", "throughput", "memory"])
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="mosaic sides (compare: 8192 16384; breakdown: 2048 8192 16384; throughput: 8192; memory: 16384)")
    parser.add_argument("--native-size", type=int, default=4096, help="compare: also this mosaic at native resolution (0: no)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="compare: a tiny network instead of the shipped model")
    parser.add_argument("--resample", default="auto", choices=["auto", "model", "native"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    defaults = {"compare": [8192, 16384], "breakdown": [2048, 8192, 16384], "throughput": [8192], "memory": [16384]}
    args.sizes = args.sizes or defaults[args.benchmark]
    os.environ.setdefault("PYTHONPATH", str(PROJECT))
    {"compare": compare, "breakdown": breakdown, "throughput": throughput, "memory": memory}[args.benchmark](args)


if __name__ == "__main__":
    main()
