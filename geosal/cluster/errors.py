"""Errors from the Dask layer that a user can cause."""

from geosal.errors import GeosalError


class ClusterError(GeosalError, RuntimeError):
    """The cluster cannot be started or reached, or cannot finish the work (one clear line)."""


class ClusterLostError(ClusterError):
    """The connection to the scheduler is gone: nothing more can run on this cluster (an archive stops)."""
