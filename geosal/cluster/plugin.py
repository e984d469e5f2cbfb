"""Hold the model on every Dask worker: built once per worker process, never pickled into tasks.

:class:`ModelPlugin` carries the small :class:`~geosal.pipeline.runner.RunnerKey`
(model spec and saliency settings) and the bytes of the weight file the client
resolved (checked against the spec's sha256 on the worker), so workers on other
machines need no access to the client's files or caches. On each worker's
``setup`` it builds the runner into its own
:class:`~geosal.pipeline.runner.RunnerCache`, on the worker's device, and sets
its forward passes to the worker's thread count; a worker without the GPU a
CUDA runner needs builds nothing (in a mixed cluster, pass-1 tasks ask for the
``GPU`` resource and go to the GPU workers only).
Pass-1 tasks are submitted as :func:`call_with_runner`, which finds the plugin
on the worker and hands its runner to the block function: one construction per
worker per model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from geosal.pipeline.runner import RunnerCache, RunnerKey


class ModelPlugin(WorkerPlugin):
    """Build the runner for ``key`` when a worker starts (or when the plugin is registered).

    Args:
        key: the model configuration the tasks will use.
        weights: the weight file's bytes as the client read them (None: random weights, or read the file).
    """

    def __init__(self, key: RunnerKey, weights: bytes | None = None):
        self.key = key
        self.weights = weights
        self.runners: RunnerCache | None = None  # made on the worker: the client's copy is only pickled

    def setup(self, worker) -> None:
        self.runners = RunnerCache({self.key: self.weights} if self.weights is not None else None)
        if not self.key.device.startswith("cuda") or torch.cuda.is_available():
            runner = self.runners.get(self.key)
            threads = getattr(worker.state, "nthreads", None) or getattr(worker, "nthreads", None)
            runner.threads = int(threads or runner.threads)  # a forward uses the worker's share of the cores


def call_with_runner(plugin: str, key: RunnerKey, function: Callable[..., Any], *args: Any) -> Any:
    """On a worker: ``function(*args, runner=...)`` with the runner of the plugin named ``plugin``."""
    return function(*args, runner=get_worker().plugins[plugin].runners.get(key))


def model_constructions(dask_worker) -> int:
    """How many runners the model plugins of a worker have built: ``client.run(model_constructions)``
    (Dask passes each worker as ``dask_worker``)."""
    plugins = dask_worker.plugins.values()
    return sum(p.runners.constructions for p in plugins if isinstance(p, ModelPlugin) and p.runners is not None)
