"""Where block functions run. The scene driver only needs :meth:`Executor.map`.

A task is ``function(job, index, *args)``; a task that runs the model is mapped
with ``model=key`` and is then called with the process's runner for that key as
``runner=``. The executor owns the runners (the in-process executor a
:class:`~geosal.pipeline.runner.RunnerCache`, the Dask executor a worker plugin
per model, :mod:`geosal.cluster`), so block functions stay pure functions of
their arguments. Every task runs through :func:`~geosal.pipeline.failures.call_task`,
so a user-caused error inside a task (an unreadable source block, a full disk)
reaches the caller as that one-line error, in-process and on Dask alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Protocol

from geosal.pipeline.failures import call_task, unwrap
from geosal.pipeline.job import SceneJob
from geosal.pipeline.runner import RunnerCache, RunnerKey


class Executor(Protocol):
    """Runs ``function(job, index, *args[, runner=])`` for each index, yielding ``(index, result)`` as they finish.

    ``stage`` names the tasks (``pass1``, ``pass2``, ...); ``model`` is the
    runner the tasks need, or None for tasks that do not run the network.
    """

    def map(
        self, function: Callable[..., Any], job: SceneJob, indices: Sequence[int], *args: Any, stage: str,
        model: RunnerKey | None = None,
    ) -> Iterator[tuple[int, Any]]: ...


class InProcessExecutor:
    """Execution in the calling process (no Dask), on ``threads`` threads; holds the process's runners.

    With more than one thread, one block reads (GDAL releases the GIL) or
    renders while another runs the network (a runner runs one forward at a
    time, on all of torch's threads). ``threads=1`` runs the tasks one after
    the other, in order.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.runners = RunnerCache()
        self.threads = threads or os.cpu_count() or 1

    def map(self, function, job, indices, *args, stage: str, model: RunnerKey | None = None):
        extra = {} if model is None else {"runner": self.runners.get(model)}
        if self.threads == 1:
            for index in indices:
                yield index, unwrap(call_task(stage, function, job, index, *args, **extra))
            return
        pending = list(indices)[::-1]
        with ThreadPoolExecutor(self.threads, thread_name_prefix=f"geosal-{stage}") as pool:
            running = {}
            try:
                while pending or running:
                    while pending and len(running) < 2 * self.threads:
                        index = pending.pop()
                        running[pool.submit(call_task, stage, function, job, index, *args, **extra)] = index
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield running.pop(future), unwrap(future.result())
            finally:
                for future in running:
                    future.cancel()

    def close(self) -> None:
        """Nothing to release."""
