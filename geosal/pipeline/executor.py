"""Where block functions run. The scene driver only needs :meth:`Executor.map`.

A task is ``function(job, index, *args)``; a task that runs the model is mapped
with ``model=key`` and is then called with the process's runner for that key as
``runner=``. The executor owns the runners (the in-process executor a
:class:`~geosal.pipeline.runner.RunnerCache`, the Dask executor a worker plugin
per model, :mod:`geosal.cluster`), so block functions stay pure functions of
their arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

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
    """Sequential execution in the calling process (no Dask); holds the process's runners."""

    def __init__(self) -> None:
        self.runners = RunnerCache()

    def map(self, function, job, indices, *args, stage: str, model: RunnerKey | None = None):
        extra = {} if model is None else {"runner": self.runners.get(model)}
        for index in indices:
            yield index, function(job, index, *args, **extra)

    def close(self) -> None:
        """Nothing to release."""
