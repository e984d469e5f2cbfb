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

The plugin is *idempotent*: the scheduler keeps it and gives it to every worker
that joins later, and registering it again (a retry after a worker died during
the registration) changes nothing on the workers that have it. ``setup`` never
raises: a worker that cannot build the model keeps the reason, and the tasks
sent to it fail with that one line (never a worker traceback).

Pass-1 tasks are submitted as :func:`call_with_runner`, which finds the plugin
on the worker (waiting for it when the task arrived before the registration
reached this worker) and hands its runner to the block function: one
construction per worker per model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from geosal.cluster.errors import ClusterError
from geosal.errors import GeosalError
from geosal.pipeline.failures import call_task
from geosal.pipeline.job import SceneJob
from geosal.pipeline.pause import pause_point
from geosal.pipeline.runner import RunnerCache, RunnerKey, TileRunner

PLUGIN_WAIT_S = 120.0
"""How long a task waits on a worker for the model plugin to arrive and finish its setup."""


class ModelPlugin(WorkerPlugin):
    """Build the runner for ``key`` when a worker starts (or when the plugin is registered).

    Args:
        key: the model configuration the tasks will use.
        weights: the weight file's bytes as the client read them (None: random weights, or read the file).
    """

    idempotent = True

    def __init__(self, key: RunnerKey, weights: bytes | None = None):
        self.key = key
        self.weights = weights
        self.runners: RunnerCache | None = None  # made on the worker, at the end of setup: the client's copy is only pickled
        self.error: GeosalError | None = None

    def setup(self, worker) -> None:
        pause_point("plugin-setup")
        runners = RunnerCache({self.key: self.weights} if self.weights is not None else None)
        try:
            if not self.key.device.startswith("cuda") or torch.cuda.is_available():
                runner = runners.get(self.key)
                threads = getattr(worker.state, "nthreads", None) or getattr(worker, "nthreads", None)
                runner.threads = int(threads or runner.threads)  # a forward uses the worker's share of the cores
        except GeosalError as error:
            self.error = ClusterError(f"worker {worker.address} cannot build the model: {error}")
        except Exception as error:  # noqa: BLE001 - reported by the tasks in one line instead of a worker traceback
            first = (str(error).strip().splitlines() or [""])[0]
            self.error = ClusterError(f"worker {worker.address} cannot build the model: {type(error).__name__}: {first}")
        self.runners = runners

    def runner(self) -> TileRunner:
        """The worker's runner for the plugin's key (built now if setup did not), or the setup's error raised."""
        if self.error is not None:
            raise self.error
        assert self.runners is not None
        return self.runners.get(self.key)


def worker_plugin(name: str, wait_s: float = PLUGIN_WAIT_S) -> ModelPlugin:
    """On a worker: the model plugin registered as ``name``, once its setup is done (waiting at most ``wait_s``).

    Raises:
        ClusterError: the plugin did not arrive in time.
    """
    worker = get_worker()
    deadline = time.monotonic() + wait_s
    while True:
        plugin = worker.plugins.get(name)
        if isinstance(plugin, ModelPlugin) and plugin.runners is not None:
            return plugin
        if time.monotonic() > deadline:
            raise ClusterError(f"the model did not reach worker {worker.address} within {wait_s:g} s (plugin {name})")
        time.sleep(0.05)


def call_with_runner(stage: str, plugin: str, function: Callable[..., Any], job: SceneJob, *args: Any) -> Any:
    """On a worker: ``function(job, *args, runner=...)`` with the runner of the plugin named ``plugin``, through
    :func:`~geosal.pipeline.failures.call_task` (a user-caused error comes back as a value)."""

    def with_runner(job: SceneJob, *args: Any) -> Any:
        return function(job, *args, runner=worker_plugin(plugin).runner())

    return call_task(stage, with_runner, job, *args)


def model_constructions(dask_worker) -> int:
    """How many runners the model plugins of a worker have built: ``client.run(model_constructions)``
    (Dask passes each worker as ``dask_worker``)."""
    plugins = dask_worker.plugins.values()
    return sum(p.runners.constructions for p in plugins if isinstance(p, ModelPlugin) and p.runners is not None)
