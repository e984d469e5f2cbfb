"""Run one scene end to end: plan -> pass 1 -> statistics -> pass 2 -> overviews -> export.

Outputs are built in ``OUT/.<name>.partial/`` and renamed to ``OUT/<name>/``
only when everything is written, so a directory under its final name is
always complete. An existing output is refused unless ``overwrite`` (replace
it) or ``resume`` (keep it if complete; continue a partial run, recomputing
only the blocks not marked done) is given.

``OUT`` may also be an ``s3://bucket/prefix`` (:func:`output_root`). An object
store cannot rename, so a scene is written in place under ``OUT/<name>/`` (every
object written whole: Zarr chunks, encoded tiles, each COG uploaded once
assembled) and is complete once its marker ``OUT/<name>/.geosal-complete.json``
(:data:`COMPLETE`) exists, which is written last; resume, overwrite and an
archive's skip-finished logic go by the marker (:func:`is_complete`). There
``--overwrite`` removes the old output when the run starts (its marker first).

A run holds the scene's output lock (``OUT/.<name>.lock``,
:mod:`~geosal.pipeline.lock`) from before it touches the output folders until
it has published them or failed: a second run into the same output refuses,
a crashed run's lock is taken over. A storage failure (full, read-only) is a
one-line :class:`OutputError`; the partial output is kept for ``--resume``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

import geosal
from geosal.config import RunConfig
from geosal.pipeline.bad_blocks import collect_bad_blocks, describe_bad_blocks, remove_records
from geosal.pipeline.errors import OutputError, storage_error
from geosal.pipeline.executor import Executor, InProcessExecutor
from geosal.pipeline.export import export_layers, export_quicklook, export_stac, remove_scratch
from geosal.pipeline.job import SceneJob
from geosal.pipeline.layout import map_names, store_arrays
from geosal.pipeline.lock import OutputLock
from geosal.pipeline.overviews import build_overview_tile, create_pyramid, overview_levels, overview_tiles
from geosal.pipeline.pass1 import run_block
from geosal.pipeline.pass2 import SceneStatistics, render_block
from geosal.pipeline.pause import pause_point
from geosal.pipeline.plan import ScenePlan, plan_scene
from geosal.pipeline.runner import runner_key
from geosal.pipeline.settings import RunSettings
from geosal.raster import block_stats, create_store, done_blocks, update_attrs
from geosal.raster.objects import (
    absolute,
    delete,
    exists,
    is_object_url,
    is_url,
    join,
    remove_tree,
    scheme,
    stem,
    write_bytes,
    write_text,
)
from geosal.raster.store import read_attrs

OutputRoot = Path | str
"""A local folder (a ``Path``) or an ``s3://`` prefix (a URL string)."""
COMPLETE = ".geosal-complete.json"
"""The completion marker of a scene in an object store (written last; holds when and what completed)."""


@dataclass
class SceneResult:
    """What a scene run did.

    Attributes:
        name: scene name (output folder name).
        output: the finished output folder (a ``Path``, or an ``s3://`` URL).
        tiles: tiles in the scene; ``tiles_computed`` of them ran in this call.
        blocks_skipped: blocks already done by an earlier, interrupted run.
        seconds: wall time per stage: ``plan``, ``pass1``, ``statistics`` (reduction, scratch pyramid),
            ``pass2`` (with the overview stages), ``export`` and ``total``; ``plan``,
            ``statistics`` and ``export`` run on the client.
        notes: decisions worth telling the user (resampling, band choice, unreadable source blocks...).
        bad_blocks: the unreadable source blocks written as nodata (``input.skip_bad_blocks``), as
            :meth:`~geosal.raster.damaged.SourceBlock.as_dict` records.
    """

    name: str
    output: OutputRoot
    tiles: int
    tiles_computed: int
    blocks: int
    blocks_skipped: int
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    skipped: bool = False
    bad_blocks: tuple[dict[str, int], ...] = ()

    @property
    def tiles_per_second(self) -> float:
        return self.tiles_computed / self.seconds["pass1"] if self.seconds.get("pass1") else 0.0


def run_metadata(plan: ScenePlan, notes: tuple[str, ...]) -> dict:
    """The run description stored in the Zarr attributes and the STAC Item."""
    return {
        "geosal_version": geosal.__version__,
        "source": absolute(plan.scene.path),
        "model": plan.spec.to_dict(),
        "statistic": plan.statistic,
        "weights": list(plan.weights),
        "layers": [s.layer for s in plan.scales],
        "strides": [s.stride for s in plan.scales],
        "tile": plan.tile,
        "halo": plan.halo,
        "block": plan.block,
        "working_grid": asdict(plan.grid),
        "scaling": asdict(plan.scaling),
        "fast_cam_class": plan.fast_cam_class,
        "precision": plan.precision,
        "output_stride": plan.output_stride,
        "notes": list(notes),
        "fingerprint": plan.fingerprint(),
    }


def _prepare(plan: ScenePlan, notes: tuple[str, ...], name: str, out_root: OutputRoot, overwrite: bool,
             resume: bool) -> tuple[OutputRoot, OutputRoot, bool]:
    """Decide the partial and final folders; returns ``(partial, final, complete_already)``."""
    if is_url(out_root):
        return _prepare_remote(plan, notes, name, out_root, overwrite, resume)
    final, partial = out_root / name, out_root / f".{name}.partial"
    if final.exists():
        if resume and not overwrite:
            return partial, final, True
        if not overwrite:
            raise OutputError(f"{final} already exists: pass --overwrite to replace it or --resume to keep it")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
        probe = out_root / f".{name}.write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write to {out_root}: {error.strerror or error}") from None
    store = partial / "saliency.zarr"
    if partial.exists() and resume and store.exists():
        _check_resumable(plan, store, partial)
        return partial, final, False
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    create_store(store, plan.scene.crs_wkt, store_arrays(plan), plan.n_blocks, map_names(plan), run_metadata(plan, notes))
    return partial, final, False


def _prepare_remote(plan: ScenePlan, notes: tuple[str, ...], name: str, out_root: str, overwrite: bool,
                    resume: bool) -> tuple[str, str, bool]:
    """:func:`_prepare` in an object store, where nothing can be renamed: the scene is written in place under
    ``OUT/<name>/`` and is complete once its marker (:data:`COMPLETE`) exists, written last."""
    final = join(out_root, name)
    if exists(join(final, COMPLETE)):
        if resume and not overwrite:
            return final, final, True
        if not overwrite:
            raise OutputError(f"{final} already exists: pass --overwrite to replace it or --resume to keep it")
        delete(join(final, COMPLETE))  # no longer complete from here on: the objects below go next
    store = join(final, "saliency.zarr")
    if resume and exists(join(store, ".zgroup")):
        _check_resumable(plan, store, final)
        return final, final, False
    remove_tree(final)
    create_store(store, plan.scene.crs_wkt, store_arrays(plan), plan.n_blocks, map_names(plan), run_metadata(plan, notes))
    return final, final, False


def _check_resumable(plan: ScenePlan, store: OutputRoot, partial: OutputRoot) -> None:
    """Refuse to resume a partial output started with other settings or another source."""
    if read_attrs(store).get("fingerprint") != plan.fingerprint():
        raise OutputError(f"cannot resume {partial}: it was started with other settings or another source; use --overwrite")


def output_root(out_root: str | Path) -> OutputRoot:
    """The output folder as the pipeline handles it: a ``Path``, or an ``s3://`` URL kept as a string (without a
    trailing ``/``).

    Raises:
        OutputError: a URL of a kind geosal cannot write to (``https://``...).
    """
    if not is_url(out_root):
        return Path(out_root)
    if not is_object_url(out_root):
        raise OutputError(f"{out_root}: outputs go to a local folder or an s3://bucket/prefix, not to {scheme(out_root)}://")
    return os.fspath(out_root).rstrip("/")


def scene_output(out_root: OutputRoot, name: str) -> OutputRoot:
    """The final output folder of scene ``name`` under ``out_root``."""
    return join(out_root, name) if is_url(out_root) else out_root / name


def is_complete(folder: OutputRoot) -> bool:
    """Whether ``folder`` (a scene's final output folder) holds a complete output: it exists on a disk (only
    complete outputs are renamed there); its completion marker exists in an object store."""
    return exists(join(folder, COMPLETE)) if is_url(folder) else Path(folder).is_dir()


@dataclass(frozen=True)
class PreparedScene:
    """A planned scene whose output folders are ready (see :func:`prepare_scene`)."""

    job: SceneJob
    config: RunConfig
    notes: tuple[str, ...]
    partial: OutputRoot
    final: OutputRoot
    complete: bool
    started: float
    plan_seconds: float
    lock: OutputLock | None = None

    @property
    def plan(self) -> ScenePlan:
        """The scene's plan."""
        return self.job.plan

    def release(self) -> None:
        """Give back the output lock (done by :func:`execute_scene`; needed only for a scene never executed)."""
        if self.lock is not None:
            self.lock.release()


def prepare_scene(
    path: str | Path,
    out_root: str | Path,
    config: RunConfig,
    overwrite: bool = False,
    resume: bool = False,
    name: str | None = None,
) -> PreparedScene:
    """Validate the input, plan the scene, take its output lock and create (or reopen) its partial output.

    Cheap: no model is built and no cluster is needed, so bad input fails in
    seconds, before any worker starts. The lock is held until
    :func:`execute_scene` ends (or :meth:`PreparedScene.release`); it is
    released already when the output is complete or preparing it fails.

    Raises:
        RasterInputError, ModelLoadError, PlanError, LimitError, OutputError: bad input, one line each;
        LockHeldError (an ``OutputError``): another run writes this output.
    """
    started = time.perf_counter()
    out_root = output_root(out_root)
    plan, notes = plan_scene(path, config)
    name = name or stem(path)
    lock = OutputLock.acquire(join(out_root, f".{name}.lock"), f"the output {scene_output(out_root, name)}")
    try:
        partial, final, complete = _prepare(plan, notes, name, out_root, overwrite, resume)
    except OSError as error:
        lock.release()
        raise storage_error(error, out_root) or error from None
    except BaseException:
        lock.release()
        raise
    if complete:
        lock.release()
    job = SceneJob(name, plan, RunSettings.from_config(config), join(partial, "saliency.zarr"))
    return PreparedScene(job, config, notes, partial, final, complete, started, time.perf_counter() - started, lock)


def execute_scene(prepared: PreparedScene, executor: Executor | None = None, progress: bool = True) -> SceneResult:
    """Run pass 1 (blocks not yet done), the statistics, pass 2 and the export, then publish; the output lock
    is released in every case.

    Raises:
        OutputError: the storage refuses writes (full, read-only), or the lock was taken over.
        ClusterError: the cluster cannot finish the work (:mod:`geosal.cluster`).
        UnreadableBlockError: a source block cannot be read (without ``input.skip_bad_blocks``).
    """
    plan, name, notes = prepared.plan, prepared.job.name, prepared.notes
    if prepared.complete:
        return SceneResult(name, prepared.final, plan.n_tiles, 0, plan.n_blocks, plan.n_blocks, {"total": 0.0}, notes,
                           skipped=True)
    try:
        return _execute(prepared, executor or InProcessExecutor(), progress)
    except OSError as error:
        failure = storage_error(error, prepared.partial)
        if failure is None:
            raise
        raise failure from None
    finally:
        prepared.release()


def _execute(prepared: PreparedScene, executor: Executor, progress: bool) -> SceneResult:
    job, config, partial, final = prepared.job, prepared.config, prepared.partial, prepared.final
    plan, name, notes = job.plan, job.name, prepared.notes
    seconds: dict[str, float] = {"plan": prepared.plan_seconds}

    dashboard = getattr(executor, "dashboard", None)
    if dashboard:
        update_attrs(job.store, {"dashboard": dashboard})  # geosal view links a run in progress to it
    done = done_blocks(job.store)
    todo = [i for i in range(plan.n_blocks) if not done[i]]
    tiles_todo = sum(len(plan.tiles_in_block(i)) for i in todo)
    stage = time.perf_counter()
    with tqdm(total=tiles_todo, unit="tile", desc=f"{name} pass 1", disable=not progress, leave=False) as bar:
        for index, _ in executor.map(run_block, job, todo, stage="pass1", model=runner_key(job)):
            bar.update(len(plan.tiles_in_block(index)))
    seconds["pass1"] = time.perf_counter() - stage

    stage = time.perf_counter()
    pause_point("statistics")
    statistics = SceneStatistics.from_blocks(block_stats(job.store))
    create_pyramid(job)
    seconds["statistics"] = time.perf_counter() - stage
    stage = time.perf_counter()
    blocks = list(range(plan.n_blocks))
    _run_stage(executor, render_block, job, blocks, statistics, stage="pass2", unit="block", progress=progress)
    for level in range(1, overview_levels(job)):
        _run_stage(executor, build_overview_tile, job, list(range(overview_tiles(job, level))), level,
                   stage=f"overview{level}", unit="tile", progress=progress)
    seconds["pass2"] = time.perf_counter() - stage

    stage = time.perf_counter()
    pause_point("export")
    bad_blocks = collect_bad_blocks(job)
    if bad_blocks:
        notes += (describe_bad_blocks(bad_blocks),)
    metadata = run_metadata(plan, notes) | {
        "scene_statistics": asdict(statistics),
        "completed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if bad_blocks:
        metadata["bad_blocks"] = bad_blocks
    update_attrs(job.store, metadata)
    write_text(join(partial, "config.yaml"), _yaml(config))
    if config.output.cog:
        export_layers(job, partial)
    if config.output.quicklook:
        export_quicklook(job, partial)
    if config.output.stac and plan.scene.crs_wkt:
        export_stac(job, partial, metadata)
    remove_scratch(job)
    remove_records(job)
    seconds["export"] = time.perf_counter() - stage

    if prepared.lock is not None:
        prepared.lock.check()
    _publish(partial, final, metadata)
    seconds["total"] = time.perf_counter() - prepared.started
    if prepared.lock is not None and prepared.lock.taken_over:
        notes += (prepared.lock.taken_over,)
    return SceneResult(name, final, plan.n_tiles, tiles_todo, plan.n_blocks, plan.n_blocks - len(todo), seconds, notes,
                       bad_blocks=tuple(bad_blocks))


def _publish(partial: OutputRoot, final: OutputRoot, metadata: dict) -> None:
    """Make the output complete: rename the partial folder into place on a disk; in an object store, write the
    completion marker (the last object of the scene)."""
    if is_url(final):
        marker = {"completed": metadata["completed"], "fingerprint": metadata["fingerprint"],
                  "geosal_version": geosal.__version__}
        write_bytes(join(final, COMPLETE), json.dumps(marker).encode())
        return
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)


def _run_stage(executor: Executor, function, job: SceneJob, indices: list[int], *args, stage: str, unit: str,
               progress: bool) -> None:
    """Run one stage of tasks that need no model, with a progress bar."""
    with tqdm(total=len(indices), unit=unit, desc=f"{job.name} {stage}", disable=not progress, leave=False) as bar:
        for _ in executor.map(function, job, indices, *args, stage=stage):
            bar.update(1)


def run_scene(
    path: str | Path,
    out_root: str | Path,
    config: RunConfig,
    executor: Executor | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> SceneResult:
    """Compute the saliency layers of one scene (see the module docstring).

    Args:
        path: the GeoTIFF (anything GDAL reads): a local path, an ``https://`` or an ``s3://`` URL.
        out_root: folder receiving ``<name>/``: a local folder or an ``s3://bucket/prefix``.
        config: the run configuration.
        executor: where blocks run (default: in this process).
        overwrite, resume: what to do with existing outputs.
        progress: show progress bars on stderr.
        name: output folder name (default: the file's stem, of the URL's path for a URL).

    Raises:
        RasterInputError, ModelLoadError, PlanError, LimitError, OutputError: bad input, one line each.
    """
    prepared = prepare_scene(path, out_root, config, overwrite, resume, name)
    return execute_scene(prepared, executor, progress)


def _yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
