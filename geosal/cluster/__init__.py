"""Dask: start or reach a cluster, hold the model on every worker, run the pipeline's tasks.

- :func:`open_executor`: the executor a run configuration asks for (in-process,
  a local cluster, or ``--scheduler``); what the command line uses;
- :func:`cluster_client`, :func:`default_layout`: the Dask client and the local layout;
- :class:`DaskExecutor`: the scene pipeline's tasks on a ``distributed.Client``;
- :class:`ModelPlugin`: the per-worker model holder; :func:`model_constructions`.

Names are imported on first use, so an in-process run never imports Dask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geosal._lazy import lazy_exports

if TYPE_CHECKING:
    from geosal.cluster.connect import cluster_client, default_layout
    from geosal.cluster.errors import ClusterError, ClusterLostError
    from geosal.cluster.executor import DaskExecutor
    from geosal.cluster.factory import check_device, open_executor
    from geosal.cluster.plugin import ModelPlugin, model_constructions

__all__ = [
    "ClusterError", "ClusterLostError", "DaskExecutor", "ModelPlugin", "check_device", "cluster_client", "default_layout",
    "model_constructions", "open_executor",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "ClusterError": "errors", "ClusterLostError": "errors", "DaskExecutor": "executor", "ModelPlugin": "plugin",
    "cluster_client": "connect", "default_layout": "connect", "model_constructions": "plugin", "open_executor": "factory",
    "check_device": "factory",
})
