"""Run the scene pipeline's tasks on a Dask cluster, through the death of any worker.

One task per block (pass 1) and per output chunk (pass 2), never per tile.
Task keys are ``("geosal-<stage>-<scene>", block)`` so the dashboard groups
them by scene and stage; each task is annotated with its scene, stage and tile
count, and the whole scene runs inside a Dask span named after it. The job is
passed with each task (no scatter that a dying worker could take with it).
Tasks that run the model get it from a :class:`~geosal.cluster.plugin.ModelPlugin`
registered for their model key.

Failures, and what each becomes:

- a worker dies: Dask runs its tasks again on the others (tasks rewrite the
  same bytes); a registration interrupted by a dying worker is retried
  (:func:`register_model_plugin`), and workers that join later get the plugin
  from the scheduler;
- no worker left (or none with the ``GPU`` resource a task needs): the run
  says so on the console and waits up to ``worker_wait_s`` for one to join,
  then fails with a :class:`~geosal.cluster.errors.ClusterLostError`;
- the scheduler is lost: a ``ClusterLostError``;
- a task killed worker after worker (``distributed.scheduler.allowed-failures``):
  a :class:`~geosal.cluster.errors.ClusterError`;
- a user-caused error inside a task: that error, raised here
  (:mod:`geosal.pipeline.failures`).

A failed scene keeps its partial output, which ``--resume`` continues.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any

import dask
from distributed import Client, Future, KilledWorker, span, wait
from distributed.comm.core import CommClosedError
from distributed.diagnostics.plugin import WorkerPlugin
from tqdm import tqdm

from geosal.cluster.errors import ClusterError, ClusterLostError
from geosal.cluster.plugin import ModelPlugin, call_with_runner
from geosal.cluster.storage import StoragePlugin, needs_storage, storage_plugin_name
from geosal.models import weight_bytes
from geosal.pipeline.failures import call_task, unwrap
from geosal.pipeline.job import SceneJob
from geosal.pipeline.runner import RunnerKey
from geosal.raster.credentials import current

REGISTER_ATTEMPTS = 6
"""Attempts at registering the model plugin when a worker dies during the registration."""
POLL_S = 2.0
"""Seconds between checks of the cluster while no task finishes."""
DEFAULT_WORKER_WAIT_S = 300.0
"""Default of ``compute.worker_wait_s``."""


def task_resources(gpu: bool, model: RunnerKey | None) -> dict[str, int] | None:
    """The worker resources a task asks for: one ``GPU`` slot for a task that runs the model on a GPU cluster;
    nothing for the others (pass 2, overviews), which then run on any worker, CPU workers included."""
    return {"GPU": 1} if gpu and model is not None else None


def plugin_name(key: RunnerKey) -> str:
    """The name the model plugin for ``key`` is registered under (stable across processes)."""
    return "geosal-model-" + hashlib.sha1(repr(key).encode()).hexdigest()[:12]


def lost_scheduler(client: Client) -> ClusterLostError:
    """The error of a run whose scheduler went away."""
    address = getattr(client.scheduler, "address", None) or "the Dask scheduler"
    return ClusterLostError(f"lost the Dask scheduler at {address} (it stopped, or the network failed); the partial output "
                            "is kept: start a scheduler and workers, then rerun with --resume")


def register_model_plugin(client: Client, plugin: WorkerPlugin, name: str, attempts: int = REGISTER_ATTEMPTS) -> None:
    """Register ``plugin`` (the model's, or the storage access's) on every worker, present and future, retrying when
    a worker dies meanwhile.

    A worker that dies while the scheduler hands it the plugin makes the
    registration fail with a comm error although the scheduler already keeps
    the plugin; the plugin is idempotent, so a retry completes what is left.

    Raises:
        ClusterError: the scheduler is gone, or every attempt failed.
    """
    for attempt in range(1, attempts + 1):
        try:
            client.register_plugin(plugin, name=name)
            return
        except (CommClosedError, OSError, TimeoutError) as error:
            if client.status not in ("running", "connecting"):
                raise lost_scheduler(client) from None
            if attempt == attempts:
                first = (str(error).strip().splitlines() or [type(error).__name__])[0]
                raise ClusterError(f"cannot register the model on the Dask workers ({attempts} attempts): {first}") from None
            time.sleep(min(0.25 * 2**attempt, 4.0))


def _say(message: str) -> None:
    tqdm.write(f"geosal: {message}", file=sys.stderr)  # on a line of its own, under any progress bar


class DaskExecutor:
    """Executor backed by a ``distributed.Client``.

    Args:
        client: a connected client.
        gpu: tasks that run the model ask for one unit of the ``GPU`` worker resource.
        max_in_flight: cap on tasks submitted but not finished, so a huge scene
            (or archive) never floods the scheduler or piles up results.
        worker_wait_s: how long to wait for a worker to join when none that can run the tasks is left.
        notify: prints a console line (default: ``geosal: ...`` on stderr, under the progress bars).
    """

    def __init__(self, client: Client, gpu: bool = False, max_in_flight: int | None = None,
                 worker_wait_s: float = DEFAULT_WORKER_WAIT_S, notify: Callable[[str], None] | None = None):
        self.client = client
        self.gpu = gpu
        self.dashboard = client.dashboard_link
        """The Dask dashboard's address (the viewer links to it)."""
        workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        self.max_in_flight = max_in_flight or max(8, 4 * workers)
        self.worker_wait_s = worker_wait_s
        self.notify = notify or _say
        self._plugins: set[str] = set()
        self._lock = threading.Lock()  # scenes of an archive map from several threads

    def ensure_storage(self) -> None:
        """Register the worker plugin that gives the workers this process's storage access (once per access)."""
        access = current()
        name = storage_plugin_name(access)
        with self._lock:
            if name not in self._plugins:
                register_model_plugin(self.client, StoragePlugin(access), name)
                self._plugins.add(name)

    def ensure_model(self, key: RunnerKey) -> str:
        """Register the worker plugin that holds ``key``'s model (once per model); returns its name."""
        name = plugin_name(key)
        with self._lock:
            if name not in self._plugins:
                register_model_plugin(self.client, ModelPlugin(key, weight_bytes(key.spec)), name)
                self._plugins.add(name)
        return name

    def map(
        self, function: Callable[..., Any], job: SceneJob, indices: Sequence[int], *args: Any, stage: str,
        model: RunnerKey | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Submit ``function(job, index, *args)`` per index with at most ``max_in_flight`` running.

        Raises:
            ClusterError: see the module docstring; a user-caused error of a task as itself.
        """
        if needs_storage(job):
            self.ensure_storage()
        if model is not None:
            plugin = self.ensure_model(model)
            call, head = call_with_runner, (stage, plugin, function)
        else:
            call, head = call_task, (stage, function)
        resources = task_resources(self.gpu, model)
        prefix = f"geosal-{stage}-{job.name}"
        pending = list(indices)[::-1]
        running: dict[Future, int] = {}
        watch = _WorkerWatch(self, resources, f"{stage} of {job.name}")

        def fill() -> None:
            while pending and len(running) < self.max_in_flight:
                index = pending.pop()
                with dask.annotate(geosal_scene=job.name, geosal_pass=stage, geosal_tiles=len(job.plan.tiles_in_block(index))):
                    future = self.client.submit(
                        call, *head, job, index, *args, key=(prefix, index), resources=resources, pure=False, retries=2
                    )
                running[future] = index

        with span(f"geosal {job.name}"):
            fill()
            while running:
                try:
                    finished = wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    finished = ()
                except (CancelledError, CommClosedError, OSError):
                    if self.client.status != "running":
                        raise lost_scheduler(self.client) from None
                    raise
                if not finished:
                    watch.check()
                    continue
                watch.progress()
                for future in finished:
                    index = running.pop(future)
                    result = self._result(future, stage, job, watch)
                    future.release()
                    fill()
                    yield index, unwrap(result)

    def _result(self, future: Future, stage: str, job: SceneJob, watch: _WorkerWatch) -> Any:
        """The future's result, with cluster failures as one-line errors. A result held by a worker that died
        meanwhile is computed again, so fetching it is watched like waiting for it."""
        while True:
            try:
                return future.result(timeout=POLL_S)
            except TimeoutError:
                watch.check()
            except KilledWorker:
                raise ClusterError(
                    f"a {stage} task of {job.name} was running on each of the workers that died "
                    f"(distributed.scheduler.allowed-failures: {dask.config.get('distributed.scheduler.allowed-failures')}); "
                    "the partial output is kept: rerun with --resume"
                ) from None
            except (CancelledError, CommClosedError, OSError):
                if self.client.status != "running":
                    raise lost_scheduler(self.client) from None
                raise

    def usable_workers(self, resources: dict[str, int] | None) -> int:
        """Workers that can run a task asking for ``resources`` (all of them when None)."""
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}).values()
        if not resources:
            return len(workers)
        return sum(all(w.get("resources", {}).get(r, 0) >= n for r, n in resources.items()) for w in workers)

    def close(self) -> None:
        """Nothing of its own to release (the client belongs to the caller)."""


class _WorkerWatch:
    """While no task finishes: fail when the scheduler is gone; when no worker can run the tasks, say so,
    wait up to the executor's ``worker_wait_s`` for one, then fail."""

    def __init__(self, executor: DaskExecutor, resources: dict[str, int] | None, what: str):
        self.executor, self.resources, self.what = executor, resources, what
        self.since: float | None = None  # when no usable worker was first seen
        self.told = False  # whether the user was told

    def check(self) -> None:
        executor = self.executor
        if executor.client.status != "running":
            raise lost_scheduler(executor.client)
        try:
            workers = executor.usable_workers(self.resources)
        except (CommClosedError, OSError):
            raise lost_scheduler(executor.client) from None
        kind = "Dask worker" if not self.resources else "Dask worker with " + ", ".join(self.resources)
        if workers:
            if self.told:
                executor.notify(f"a {kind} is back: {self.what} continues")
            self.since, self.told = None, False
            return
        if executor.client.status != "running":  # a client losing its scheduler empties its view of the workers
            raise lost_scheduler(executor.client)
        now = time.monotonic()
        if self.since is None:  # told only when the next check agrees: a scheduler dying now is not a lost worker
            self.since = now
        elif not self.told:
            self.told = True
            executor.notify(f"no {kind} left: {self.what} waits up to {executor.worker_wait_s:g} s for one to join "
                            "(compute.worker_wait_s)")
        if now - self.since > executor.worker_wait_s:
            raise ClusterLostError(f"no {kind} joined within {executor.worker_wait_s:g} s (compute.worker_wait_s); "
                               "the partial output is kept: start workers, then rerun with --resume")

    def progress(self) -> None:
        if self.told:
            self.executor.notify(f"{self.what} continues")
        self.since, self.told = None, False
