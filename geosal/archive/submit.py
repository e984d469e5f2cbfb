"""Plan and run every scene of an archive on one shared executor.

:func:`submit_archive` is the whole workflow behind ``geosal submit``:

1. discover the scenes (:func:`~geosal.archive.sources.discover_scenes`);
2. plan them all up front with :func:`~geosal.pipeline.prepare_scene` (cheap,
   no model); a scene that cannot be planned is recorded as failed and the
   others go on; with ``resume`` a scene whose final folder exists is skipped;
3. run the planned scenes with :func:`~geosal.pipeline.execute_scene`, up to
   ``config.archive.max_scenes_in_flight`` at once (one thread each) on ONE
   executor. Each scene caps its own tasks in flight, so the work in flight,
   and the memory it holds, is bounded by scenes x tasks in flight. The
   in-process executor runs one scene at a time;
4. write ``catalog.json``, ``summary.json`` and ``report.html`` in ``OUT/``.

The whole submit holds ``OUT/.lock`` (a second ``geosal submit`` into the
same folder refuses in one line), and each planned scene its own output lock
until it ends (:mod:`geosal.pipeline.lock`), so a ``geosal run`` into one of
its scenes refuses too. A lost cluster (the scheduler gone, or no worker for
``compute.worker_wait_s``) stops the archive: the scenes not started are
recorded as failed, the summary and report are written, and the error is
raised; ``--resume`` continues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from geosal.archive.catalog import write_catalog
from geosal.archive.outcome import ArchiveResult, SceneOutcome, folder_bytes
from geosal.archive.report import write_report
from geosal.archive.sources import ArchiveScene, discover_scenes
from geosal.archive.summary import write_summary
from geosal.cluster.errors import ClusterLostError
from geosal.config import RunConfig
from geosal.pipeline.errors import OutputError
from geosal.pipeline.executor import Executor, InProcessExecutor
from geosal.pipeline.lock import OutputLock
from geosal.pipeline.pause import pause_point
from geosal.pipeline.scene import PreparedScene, execute_scene, is_complete, output_root, prepare_scene, scene_output
from geosal.raster.objects import join

Ready = tuple[ArchiveScene, PreparedScene, float]
"""A planned scene: the scene, its prepared output, and its planning time in seconds."""


def plan_archive(
    scenes: Sequence[ArchiveScene],
    out: str | Path,
    config: RunConfig,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = False,
) -> tuple[list[Ready], dict[str, SceneOutcome]]:
    """Prepare every scene; never raises for a single scene.

    Returns:
        ``(ready, settled)``: the scenes to execute, and the outcome of every
        scene already settled, by name: ``failed`` (planning error, with its
        one-line message) or ``skipped`` (complete, with ``resume``).
    """
    out = output_root(out)
    ready: list[Ready] = []
    settled: dict[str, SceneOutcome] = {}
    for scene in tqdm(scenes, desc="planning", unit="scene", disable=not progress, leave=False):
        final = scene_output(out, scene.name)
        if scene.error is not None:
            settled[scene.name] = SceneOutcome.failed(scene, scene.error, "plan")
            continue
        if resume and not overwrite and is_complete(final):
            settled[scene.name] = SceneOutcome.already_complete(scene, final)  # what prepare_scene would decide, without planning
            continue
        started = time.perf_counter()
        try:
            prepared = prepare_scene(scene.source, out, config, overwrite=overwrite, resume=resume, name=scene.name)
        except Exception as error:  # noqa: BLE001 - one bad scene must not stop the archive
            settled[scene.name] = SceneOutcome.failed(scene, error, "plan", {"plan": time.perf_counter() - started})
            continue
        if prepared.complete:
            settled[scene.name] = SceneOutcome.already_complete(scene, prepared.final)
        else:
            ready.append((scene, prepared, time.perf_counter() - started))
    return ready, settled


def _execute_one(scene: ArchiveScene, prepared: PreparedScene, plan_seconds: float, executor: Executor,
                 lost: list[ClusterLostError], first: bool = True) -> SceneOutcome:
    """Execute one planned scene and record how it went; a lost cluster is also appended to ``lost``."""
    if not first:
        pause_point("next-scene")
    if lost:
        prepared.release()
        return SceneOutcome.failed(scene, f"not started: {lost[0]}", "run", {"plan": plan_seconds})
    started = time.perf_counter()
    try:
        result = execute_scene(prepared, executor, progress=False)
    except Exception as error:  # noqa: BLE001 - recorded; the partial output stays for --resume
        if isinstance(error, ClusterLostError):
            lost.append(error)
        return SceneOutcome.failed(scene, error, "run", {"plan": plan_seconds, "total": plan_seconds + time.perf_counter() - started})
    return SceneOutcome.completed(scene, result, plan_seconds, time.perf_counter() - started)


def execute_scenes(
    ready: Sequence[Ready],
    executor: Executor,
    max_scenes_in_flight: int = 2,
    on_done: Callable[[SceneOutcome], None] | None = None,
    lost: list[ClusterLostError] | None = None,
) -> list[SceneOutcome]:
    """Execute planned scenes, ``max_scenes_in_flight`` at a time, on one shared executor.

    Scenes run in threads of this process, each driving its own blocks through
    ``executor`` (a :class:`~geosal.cluster.DaskExecutor`'s client is
    thread-safe). An :class:`~geosal.pipeline.InProcessExecutor` runs one scene
    at a time whatever ``max_scenes_in_flight`` says. A scene that fails is
    recorded, never raised; after a lost cluster the scenes not started yet
    are recorded as failed without running.

    Args:
        ready: planned scenes from :func:`plan_archive`.
        on_done: called in the calling thread with each outcome as it finishes.
        lost: receives the :class:`~geosal.cluster.ClusterLostError` that stopped the archive, if any.

    Returns:
        The outcomes in completion order.
    """
    on_done = on_done or (lambda outcome: None)
    lost = [] if lost is None else lost
    outcomes: list[SceneOutcome] = []
    if isinstance(executor, InProcessExecutor) or max_scenes_in_flight <= 1 or len(ready) <= 1:
        for number, entry in enumerate(ready):
            outcomes.append(_execute_one(*entry, executor, lost, first=number == 0))
            on_done(outcomes[-1])
        return outcomes
    pool = ThreadPoolExecutor(max_workers=max_scenes_in_flight, thread_name_prefix="geosal-scene")
    try:
        pending = list(ready)
        running: set[Future] = set()
        started = 0
        while pending or running:
            while pending and len(running) < max_scenes_in_flight:
                running.add(pool.submit(_execute_one, *pending.pop(0), executor, lost, first=started == 0))
                started += 1
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                outcomes.append(future.result())
                on_done(outcomes[-1])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # interrupted: do not wait for the scenes still running
        raise
    pool.shutdown()
    return outcomes


def submit_archive(
    archive: str | Path,
    out: str | Path,
    config: RunConfig,
    overwrite: bool = False,
    resume: bool = False,
    executor: Executor | None = None,
    progress: bool = False,
    quiet: bool = True,
) -> ArchiveResult:
    """Compute the saliency layers of every scene of ``archive`` into ``out``.

    Args:
        archive: folder, glob pattern, GeoTIFF or STAC file (see :func:`discover_scenes`).
        out: output folder (or ``s3://bucket/prefix``): ``OUT/<scene>/`` per scene, plus ``catalog.json``,
            ``summary.json`` and ``report.html``.
        config: the run configuration; ``config.archive`` sets the STAC asset
            and the scenes in flight, ``config.compute`` the executor.
        overwrite, resume: what to do with existing scene outputs (without
            either, an existing one is a failure of that scene).
        executor: where blocks run (default: from ``config.compute``: a local
            Dask cluster, ``--scheduler`` or in-process, started only when a
            scene needs computing).
        progress: show progress bars on stderr.
        quiet: do not print the cluster's dashboard address.

    Returns:
        The per-scene outcomes; ``result.exit_code`` is 0 when none failed.

    Raises:
        ArchiveError, ModelLoadError, OutputError, ClusterError: the archive,
            the model, the output folder or the cluster cannot be used at all;
            LockHeldError (an ``OutputError``): another ``geosal submit`` writes to ``out``;
            ClusterLostError: the cluster was lost (after the summary and report are written).
    """
    from geosal.models import resolve_spec

    out = output_root(out)
    started = time.perf_counter()
    scenes = discover_scenes(archive, config.archive.asset, exclude=out)
    resolve_spec(config.model.name, **config.model.overrides())  # a bad model fails the invocation, not every scene
    try:
        if isinstance(out, Path):
            out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {out}: {error.strerror or error}") from None
    with OutputLock.acquire(join(out, ".lock"), f"the archive output {out}") as lock:
        if lock.taken_over and progress:
            print(f"note: {lock.taken_over}")
        ready, settled = plan_archive(scenes, out, config, overwrite, resume, progress)
        planned = time.perf_counter()
        try:
            finished, lost = _execute_with_progress(scenes, ready, settled, config, executor, progress, quiet)
        finally:
            for _, prepared, _ in ready:  # executed scenes released theirs already; this covers an interruption
                prepared.release()
        settled.update((o.name, o) for o in finished)
        ran = time.perf_counter()

        result = ArchiveResult(out, [settled[s.name] for s in scenes],
                               {"plan": planned - started, "run": ran - planned, "total": ran - started})
        complete = [o.name for o in result.outcomes if o.status != "failed" or is_complete(scene_output(out, o.name))]
        write_catalog(out, complete)  # every complete scene folder, even one this run refused
        for outcome in result.outcomes:  # the catalog adds root/parent links to each item.json
            if outcome.status != "failed":
                outcome.output_bytes = folder_bytes(scene_output(out, outcome.name))
        write_summary(join(out, "summary.json"), result, archive=str(archive))
        write_report(join(out, "report.html"), result, archive=str(archive))
    if lost:
        raise lost[0]
    return result


def _execute_with_progress(
    scenes: list[ArchiveScene], ready: list[Ready], settled: dict[str, SceneOutcome], config: RunConfig,
    executor: Executor | None, progress: bool, quiet: bool,
) -> tuple[list[SceneOutcome], list[ClusterLostError]]:
    """Execute the ready scenes (on ``executor``, or one opened from ``config.compute`` if there is work) under a
    progress bar of every scene; returns the outcomes and the lost-cluster error that stopped the archive, if any."""
    started = time.perf_counter()
    computed, failed = 0, sum(o.status == "failed" for o in settled.values())
    finished: list[SceneOutcome] = []
    lost: list[ClusterLostError] = []
    with tqdm(total=len(scenes), initial=len(settled), desc="scenes", unit="scene", disable=not progress) as bar:
        for outcome in settled.values() if progress else ():
            bar.write(outcome.line())

        def done(outcome: SceneOutcome) -> None:
            nonlocal computed, failed
            computed += outcome.tiles_computed
            failed += outcome.status == "failed"
            rate = computed / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix({"tiles/s": f"{rate:.2f}", "failed": failed}, refresh=False)
            bar.update(1)
            if progress:
                bar.write(outcome.line())

        if ready:
            in_flight = config.archive.max_scenes_in_flight
            if executor is not None:
                finished = execute_scenes(ready, executor, in_flight, done, lost)
            else:
                from geosal.cluster import open_executor

                with open_executor(config.compute, quiet=quiet) as own:
                    finished = execute_scenes(ready, own, in_flight, done, lost)
    return finished, lost
