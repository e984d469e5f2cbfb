"""Where block functions run. The scene driver only needs ``map``.

:class:`InProcessExecutor` runs them one after the other in this process; the
Dask executor in :mod:`geosal.cluster` runs the very same functions on workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol


class Executor(Protocol):
    """Runs ``function(plan, index, *args)`` for each index, yielding ``(index, result)`` as they finish."""

    def map(
        self, function: Callable[..., Any], plan: Any, indices: Sequence[int], *args: Any, label: str
    ) -> Iterator[tuple[int, Any]]: ...


class InProcessExecutor:
    """Sequential execution in the calling process (no Dask)."""

    def map(self, function, plan, indices, *args, label: str = ""):
        for index in indices:
            yield index, function(plan, index, *args)

    def close(self) -> None:
        """Nothing to release."""
