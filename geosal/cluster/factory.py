"""The executor a run configuration asks for."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from geosal.config import ComputeConfig
from geosal.pipeline.executor import Executor, InProcessExecutor


@contextlib.contextmanager
def open_executor(compute: ComputeConfig, quiet: bool = False) -> Iterator[Executor]:
    """In-process (``compute.scheduler == "in-process"``), or Dask: a local cluster
    started here, or the scheduler at ``compute.scheduler``; closed on exit.

    Raises:
        ClusterError: the scheduler cannot be reached or the local cluster not started.
    """
    if compute.scheduler == "in-process":
        yield InProcessExecutor()
        return
    from geosal.cluster.connect import cluster_client
    from geosal.cluster.executor import DaskExecutor

    with cluster_client(compute, quiet=quiet) as client:
        yield DaskExecutor(client, gpu=compute.gpu)
