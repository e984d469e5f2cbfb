"""Give every Dask worker the client's storage access (endpoint, region, credentials, retry policy).

A scene whose source or output is remote (``https://``, ``s3://``) is read and
written by the workers themselves, so each worker needs the access the client
resolved from its environment (:class:`~geosal.raster.credentials.StorageAccess`).
:class:`StoragePlugin` carries it: registered once per executor before the
first task of such a scene, kept by the scheduler for workers that join later,
and applied by each worker at setup (GDAL's options set process-wide, s3fs
configured for the Zarr store and the fragments). The access never travels in
a task, a job or a plan, and its ``repr`` shows no secret; the plugin's name is
a digest of it, so a client with other credentials registers a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple

from distributed.diagnostics.plugin import WorkerPlugin

from geosal.pipeline.job import SceneJob
from geosal.raster.credentials import StorageAccess, apply
from geosal.raster.objects import is_url


class StoragePlugin(WorkerPlugin):
    """Apply ``access`` on every worker (see the module docstring); idempotent."""

    idempotent = True

    def __init__(self, access: StorageAccess):
        self.access = access

    def setup(self, worker) -> None:
        apply(self.access)

    def __repr__(self) -> str:
        return f"StoragePlugin({self.access.describe()})"


def storage_plugin_name(access: StorageAccess) -> str:
    """The name the plugin for ``access`` is registered under: a digest of every field (a changed credential gives
    a new plugin; the digest reveals nothing of the secret)."""
    return "geosal-storage-" + hashlib.sha256(repr(astuple(access)).encode()).hexdigest()[:16]


def needs_storage(job: SceneJob) -> bool:
    """Whether the workers of ``job`` read or write remote storage (its source or its store is a URL)."""
    return is_url(job.store) or is_url(job.plan.scene.path)
