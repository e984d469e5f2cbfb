"""Benchmarks of the Dask layer (issue figures; not timed tests).

    python -m workflows.bench_dask tasks        # tasks per scene size and scheduler overhead per task
    python -m workflows.bench_dask layouts      # 1 worker x 2 threads vs 2 workers x 1 thread vs in-process

Scenes are mosaics of ``../shared/data/scenes/manila_oam_10cm.tif`` in a
temporary folder; clusters are real ``LocalCluster`` worker processes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT.parent / "shared" / "data" / "scenes" / "manila_oam_10cm.tif"


def _noop(plan, index):
    return index


def tasks(args) -> None:
    """Tasks grow with blocks, not tiles; per-task scheduler overhead from a no-op map of the same shape."""
    from geosal.cluster import DaskExecutor
    from geosal.config import load_config
    from geosal.pipeline import RunSettings, SceneJob, plan_scene
    from workflows.mosaic import mosaic

    config = load_config(overrides={"input": {"resample": "native"}})
    print(f"{'scene px':>10s} {'tiles':>8s} {'blocks = pass-1 tasks':>22s} {'tiles per task':>15s}")
    with tempfile.TemporaryDirectory() as folder:
        sizes = [2048, 8192, 32768, 131072]
        for size in sizes:
            scene = Path(folder) / "scene.tif"
            if size <= 8192:
                mosaic(SOURCE, scene, size)
            else:  # a virtual raster of the same mosaic: planning needs no pixels beyond a sample
                _virtual_mosaic(SOURCE, scene.with_suffix(".vrt"), size)
                scene = scene.with_suffix(".vrt")
            plan, _ = plan_scene(scene, config)
            print(f"{size:>10d} {plan.n_tiles:>8d} {plan.n_blocks:>22d} {plan.n_tiles / plan.n_blocks:>15.1f}")
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
            executor = DaskExecutor(client)
            job = SceneJob("bench", plan, RunSettings(), "")
            for count in (100, 1000):
                started = time.perf_counter()
                for _ in executor.map(_noop, job, list(range(count)), stage="noop"):
                    pass
                seconds = time.perf_counter() - started
                print(f"scheduler round trip of {count} no-op tasks (in-flight cap {executor.max_in_flight}): "
                      f"{1000 * seconds / count:.2f} ms per task")


def _virtual_mosaic(source: Path, target: Path, size: int) -> None:
    """A VRT that repeats ``source`` over ``size x size`` pixels (no pixel data written)."""
    import rasterio

    with rasterio.open(source) as src:
        width, height, transform, crs = src.width, src.height, src.transform, src.crs.to_wkt()
    tiles = []
    for ty in range(0, size, height):
        for tx in range(0, size, width):
            tiles.append(f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{{band}}</SourceBand>'
                         f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                         f'<DstRect xOff="{tx}" yOff="{ty}" xSize="{width}" ySize="{height}"/></SimpleSource>')
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}">' + "".join(t.format(band=b) for t in tiles) + "</VRTRasterBand>" for b in (1, 2, 3)
    )
    geo = ", ".join(repr(v) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e))
    target.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{crs}</SRS>'
                      f"<GeoTransform>{geo}</GeoTransform>{bands}</VRTDataset>")


def layouts(args) -> None:
    """The same scene on 1 worker x 2 threads, 2 workers x 1 thread and in-process."""
    from geosal.cluster import DaskExecutor
    from geosal.config import load_config
    from geosal.pipeline import execute_scene, prepare_scene, runner_key
    from workflows.mosaic import mosaic

    with tempfile.TemporaryDirectory() as folder:
        scene = mosaic(SOURCE, Path(folder) / "scene.tif", args.size)
        config = load_config(overrides={"compute": {"scheduler": "in-process"}})
        runs = {}
        started = time.perf_counter()
        result = execute_scene(prepare_scene(scene, Path(folder) / "in-process", config), progress=False)
        runs["in-process"] = (time.perf_counter() - started, result)
        for workers, threads in ((1, 2), (2, 1)):
            with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                executor = DaskExecutor(client)
                prepared = prepare_scene(scene, Path(folder) / f"{workers}x{threads}", config)
                executor.ensure_model(runner_key(prepared.job))  # model construction is not throughput
                client.run(lambda: None)
                started = time.perf_counter()
                result = execute_scene(prepared, executor, progress=False)
                runs[f"{workers} worker(s) x {threads} thread(s)"] = (time.perf_counter() - started, result)
    base = runs["in-process"][0]
    print(f"scene {args.size}x{args.size} px, {result.tiles} tiles, {result.blocks} blocks")
    for name, (seconds, result) in runs.items():
        print(f"  {name:28s} {seconds:7.1f} s  {result.tiles / seconds:6.2f} tiles/s  ({100 * base / seconds:5.1f}% of in-process speed)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=["tasks", "layouts"])
    parser.add_argument("--size", type=int, default=8192, help="mosaic side for the layouts benchmark")
    args = parser.parse_args(argv)
    (tasks if args.benchmark == "tasks" else layouts)(args)


if __name__ == "__main__":
    main()
