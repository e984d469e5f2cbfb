"""Dask: cluster connection, per-worker model holding, block submission."""

from geosal.cluster.connect import cluster_client, default_layout
from geosal.cluster.errors import ClusterError
from geosal.cluster.executor import DaskExecutor
from geosal.cluster.plugin import ModelPlugin, model_constructions

__all__ = ["ClusterError", "DaskExecutor", "ModelPlugin", "cluster_client", "default_layout", "model_constructions"]
