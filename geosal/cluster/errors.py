"""Errors from the Dask layer that a user can cause."""

from geosal.errors import GeosalError


class ClusterError(GeosalError, RuntimeError):
    """The cluster cannot be started or reached, or cannot finish the work (one clear line)."""


class ClusterLostError(ClusterError):
    """Nothing more can run on this cluster: the scheduler is gone, or no worker joined in time (an archive stops)."""
