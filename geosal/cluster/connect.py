"""Start an embedded local cluster or connect to an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

from geosal.cluster.errors import ClusterError
from geosal.config import ComputeConfig


def default_layout(cores: int | None = None, processes: bool = False) -> tuple[int, int]:
    """Workers and threads per worker for this machine: with threads, one worker with a thread per core
    (one forward runs at a time on all cores, the other threads read, render and write); with processes,
    one worker per 4 cores (at least one), the cores shared out as threads (torch uses them inside a forward)."""
    cores = cores or os.cpu_count() or 1
    workers = max(1, cores // 4) if processes else 1
    return workers, max(1, cores // workers)


@contextlib.contextmanager
def cluster_client(config: ComputeConfig, quiet: bool = False) -> Iterator[Client]:
    """A client for ``config.scheduler`` (an address) or for a ``LocalCluster`` started here.

    The local cluster's workers are threads of this process (or processes,
    ``config.processes``; see :func:`default_layout`), its dashboard is on port
    8787 (or any free port when taken), and it is shut down on exit. The
    dashboard address is printed unless ``quiet``.

    Raises:
        ClusterError: the scheduler cannot be reached or the cluster not started.
    """
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout="5s")
        except (OSError, TimeoutError) as error:
            raise ClusterError(f"cannot reach the Dask scheduler at {config.scheduler}: {error}") from None
        try:
            if not quiet:
                print(f"geosal: using the Dask cluster at {config.scheduler}, dashboard {client.dashboard_link}")
            yield client
        finally:
            close_client(client)
        return
    workers, threads = default_layout(processes=config.processes)
    try:
        cluster = LocalCluster(
            n_workers=config.workers or workers,
            threads_per_worker=config.threads_per_worker or threads,
            memory_limit=config.memory_limit,
            processes=config.processes,
            dashboard_address=":8787",
            resources={"GPU": config.gpu_slots} if config.gpu else None,
        )
    except OSError as error:
        raise ClusterError(f"cannot start a local Dask cluster: {error}") from None
    client = Client(cluster)
    try:
        if not quiet:
            print(f"geosal: local Dask cluster with {len(cluster.workers)} worker(s), dashboard {client.dashboard_link}")
        yield client
    except BaseException:
        # the run failed and says why in one line; the workers (of this process) would log the tasks they drop
        with quiet_logs("distributed"):
            close_client(client)
            cluster.close()
        raise
    close_client(client)
    cluster.close()


@contextlib.contextmanager
def quiet_logs(name: str) -> Iterator[None]:
    """Only critical messages from logger ``name`` (and its children) while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def close_client(client: Client) -> None:
    """Close ``client``; after the scheduler was lost, without the reconnection tracebacks Dask would log
    (the run has already said what happened in one line)."""
    with quiet_logs("distributed.client") if client.status != "running" else contextlib.nullcontext():
        client.close(timeout=10)
