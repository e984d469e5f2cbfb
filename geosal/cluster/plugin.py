"""Hold the model on every Dask worker: built once per worker process, never pickled into tasks.

:class:`ModelPlugin` carries only the small :class:`~geosal.pipeline.runner.RunnerKey`
(model spec and saliency settings). On each worker's ``setup`` it builds the
runner into the process-wide cache of :mod:`geosal.pipeline.runner`, on the
worker's device, and sets torch's thread count to the worker's thread count.
Tasks then find the model with ``tile_runner(key)``: one construction per
worker per model spec.
"""

from __future__ import annotations

import torch
from distributed.diagnostics.plugin import WorkerPlugin

from geosal.pipeline import runner
from geosal.pipeline.runner import RunnerKey, tile_runner


class ModelPlugin(WorkerPlugin):
    """Build the runners for ``keys`` when a worker starts (or when the plugin is registered).

    Args:
        keys: one :class:`RunnerKey` per model configuration the tasks will use.
    """

    def __init__(self, keys: list[RunnerKey]):
        self.keys = list(keys)

    def setup(self, worker) -> None:
        threads = getattr(worker.state, "nthreads", None) or getattr(worker, "nthreads", None)
        if threads:
            torch.set_num_threads(int(threads))
        for key in self.keys:
            tile_runner(key)


def model_constructions() -> int:
    """How many runners this process has built (for tests and diagnostics)."""
    return runner.constructions
