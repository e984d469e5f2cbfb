"""Run the scene pipeline's tasks on a Dask cluster.

One task per block (pass 1) and per output chunk (pass 2), never per tile.
Task keys are ``("geosal-<stage>-<scene>", block)`` so the dashboard groups
them by scene and stage; each task is annotated with its scene, stage and tile
count, and the whole scene runs inside a Dask span named after it. Tasks that
run the model get it from a :class:`~geosal.cluster.plugin.ModelPlugin`
registered for their model key.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
from distributed import Client, as_completed, span

from geosal.cluster.plugin import ModelPlugin, call_with_runner
from geosal.models import weight_bytes
from geosal.pipeline.job import SceneJob
from geosal.pipeline.runner import RunnerKey


def task_resources(gpu: bool, model: RunnerKey | None) -> dict[str, int] | None:
    """The worker resources a task asks for: one ``GPU`` slot for a task that runs the model on a GPU cluster;
    nothing for the others (pass 2, overviews), which then run on any worker, CPU workers included."""
    return {"GPU": 1} if gpu and model is not None else None


def plugin_name(key: RunnerKey) -> str:
    """The name the model plugin for ``key`` is registered under (stable across processes)."""
    return "geosal-model-" + hashlib.sha1(repr(key).encode()).hexdigest()[:12]


class DaskExecutor:
    """Executor backed by a ``distributed.Client``.

    Args:
        client: a connected client.
        gpu: tasks that run the model ask for one unit of the ``GPU`` worker resource.
        max_in_flight: cap on tasks submitted but not finished, so a huge scene
            (or archive) never floods the scheduler or piles up results.
    """

    def __init__(self, client: Client, gpu: bool = False, max_in_flight: int | None = None):
        self.client = client
        self.gpu = gpu
        self.dashboard = client.dashboard_link
        """The Dask dashboard's address (the viewer links to it)."""
        workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        self.max_in_flight = max_in_flight or max(8, 4 * workers)
        self._plugins: set[str] = set()
        self._lock = threading.Lock()  # scenes of an archive map from several threads

    def ensure_model(self, key: RunnerKey) -> str:
        """Register the worker plugin that holds ``key``'s model (once per model); returns its name."""
        name = plugin_name(key)
        with self._lock:
            if name not in self._plugins:
                self.client.register_plugin(ModelPlugin(key, weight_bytes(key.spec)), name=name)
                self._plugins.add(name)
        return name

    def map(
        self, function: Callable[..., Any], job: SceneJob, indices: Sequence[int], *args: Any, stage: str,
        model: RunnerKey | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Submit ``function(job, index, *args)`` per index with at most ``max_in_flight`` running."""
        if model is not None:
            plugin = self.ensure_model(model)
            call, head = call_with_runner, (plugin, model, function)
        else:
            call, head = function, ()
        resources = task_resources(self.gpu, model)
        prefix = f"geosal-{stage}-{job.name}"
        pending = list(indices)
        index_of = {}
        running = as_completed()

        def submit(index: int) -> None:
            with dask.annotate(geosal_scene=job.name, geosal_pass=stage, geosal_tiles=len(job.plan.tiles_in_block(index))):
                future = self.client.submit(
                    call, *head, job, index, *args, key=(prefix, index), resources=resources, pure=False, retries=2
                )
            index_of[future.key] = index
            running.add(future)

        with span(f"geosal {job.name}"):
            while pending and running.count() < self.max_in_flight:
                submit(pending.pop(0))
            for future in running:
                result = future.result()
                index = index_of.pop(future.key)
                future.release()
                if pending:
                    submit(pending.pop(0))
                yield index, result

    def close(self) -> None:
        """Nothing of its own to release (the client belongs to the caller)."""
