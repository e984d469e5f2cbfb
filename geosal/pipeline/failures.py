"""User-caused failures of tasks travel back to the client as values, not as worker tracebacks.

A task that raises a :class:`~geosal.errors.GeosalError` (an unreadable source
block, a model that cannot be built on the worker) or fails to write because
the storage refuses (full, read-only: :func:`~geosal.pipeline.errors.storage_error`)
returns a :class:`TaskFailure` holding the one-line error instead: Dask neither
logs a "Compute Failed" traceback on the worker nor retries a failure that
would only repeat, and the executor raises the error on the client, where the
command line prints it as one line. Anything else is a bug and raises as usual.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

from geosal.errors import GeosalError
from geosal.pipeline.errors import storage_error
from geosal.pipeline.job import SceneJob
from geosal.pipeline.pause import pause_point


class TaskFailure(NamedTuple):
    """A task's user-caused error (picklable: every :class:`GeosalError` here is built from one message)."""

    error: GeosalError


def call_task(stage: str, function: Callable[..., Any], job: SceneJob, *args: Any, **kwargs: Any) -> Any:
    """``function(job, *args, **kwargs)``, or a :class:`TaskFailure` for a user-caused error (see the module docstring).

    ``stage`` names the task's stage (``pass1``, ``pass2``, ``overview1``, ...), a pause point for tests
    (:mod:`geosal.pipeline.pause`).
    """
    pause_point(stage)
    try:
        return function(job, *args, **kwargs)
    except GeosalError as error:
        return TaskFailure(error)
    except OSError as error:
        failure = storage_error(error, os.path.dirname(job.store))
        if failure is None:
            raise
        return TaskFailure(failure)


def unwrap(result: Any) -> Any:
    """A task's result, or its user-caused error raised here (on the client)."""
    if isinstance(result, TaskFailure):
        raise result.error
    return result
