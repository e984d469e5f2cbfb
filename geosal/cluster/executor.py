"""Run the scene pipeline's block functions on a Dask cluster.

One task per block (pass 1) and per output chunk (pass 2), never per tile.
Task keys are ``("geosal-<pass>-<scene>", block)`` so the dashboard groups
them by scene and pass; each task is annotated with its scene, pass and tile
count, and the whole scene runs inside a Dask span named after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask
from distributed import Client, as_completed, span

from geosal.cluster.plugin import ModelPlugin
from geosal.pipeline.pass1 import run_block, runner_key


class DaskExecutor:
    """Executor backed by a ``distributed.Client``.

    Args:
        client: a connected client.
        gpu: ask every task for one unit of the ``GPU`` worker resource.
        max_in_flight: cap on tasks submitted but not finished, so a huge scene
            (or archive) never floods the scheduler or piles up results.
    """

    def __init__(self, client: Client, gpu: bool = False, max_in_flight: int | None = None):
        self.client = client
        self.resources = {"GPU": 1} if gpu else None
        workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        self.max_in_flight = max_in_flight or max(8, 4 * workers)
        self._plugins: set[str] = set()

    def ensure_model(self, plan) -> None:
        """Register the worker plugin that holds ``plan``'s model (once per model)."""
        key = runner_key(plan)
        name = "geosal-model-" + hashlib.sha1(repr(key).encode()).hexdigest()[:12]
        if name not in self._plugins:
            self.client.register_plugin(ModelPlugin([key]), name=name)
            self._plugins.add(name)

    def map(
        self, function: Callable[..., Any], plan: Any, indices: Sequence[int], *args: Any, label: str
    ) -> Iterator[tuple[int, Any]]:
        """Submit ``function(plan, index, *args)`` per index with at most ``max_in_flight`` running.

        Pass 1 (:func:`~geosal.pipeline.run_block`) needs the model on the workers,
        so its plugin is registered first; other functions need none.
        """
        if function is run_block:
            self.ensure_model(plan)
        stage = label.rsplit("-", 1)[-1]
        prefix = f"geosal-{stage}-{plan.name}"
        plan_future = self.client.scatter(plan, broadcast=True, hash=False)
        extra = [self.client.scatter(a, broadcast=True, hash=False) for a in args]
        pending = list(indices)
        index_of = {}
        running = as_completed()

        def submit(index: int) -> None:
            with dask.annotate(geosal_scene=plan.name, geosal_pass=stage, geosal_tiles=len(plan.tiles_in_block(index))):
                future = self.client.submit(
                    function, plan_future, index, *extra, key=(prefix, index), resources=self.resources, pure=False, retries=2
                )
            index_of[future.key] = index
            running.add(future)

        with span(f"geosal {plan.name}"):
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
