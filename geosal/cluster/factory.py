"""The executor a run configuration asks for."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from geosal.config import ComputeConfig
from geosal.models.device import resolve_device
from geosal.pipeline.executor import Executor, InProcessExecutor


def check_device(compute: ComputeConfig) -> None:
    """Fail now, in one line, when the work runs on this machine (in-process or a local cluster) and its device
    cannot be used here; a remote cluster's workers check their own devices.

    Raises:
        DeviceError: the requested device cannot be used here.
    """
    if not compute.scheduler or compute.scheduler == "in-process":
        resolve_device(compute.device)


@contextlib.contextmanager
def open_executor(compute: ComputeConfig, quiet: bool = False) -> Iterator[Executor]:
    """In-process (``compute.scheduler == "in-process"``), or Dask: a local cluster
    started here, or the scheduler at ``compute.scheduler``; closed on exit.

    On this machine (in-process or a local cluster) the device is checked first,
    so a GPU that cannot be used fails here, in one line, before anything starts.

    Raises:
        DeviceError: the requested device cannot be used here.
        ClusterError: the scheduler cannot be reached or the local cluster not started.
    """
    check_device(compute)
    if compute.scheduler == "in-process":
        yield InProcessExecutor()
        return
    from geosal.cluster.connect import cluster_client
    from geosal.cluster.executor import DaskExecutor

    with cluster_client(compute, quiet=quiet) as client:
        yield DaskExecutor(client, gpu=compute.uses_gpu, worker_wait_s=compute.worker_wait_s)
