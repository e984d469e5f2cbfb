"""Errors from the Dask layer that a user can cause."""

from geosal.errors import GeosalError


class ClusterError(GeosalError, RuntimeError):
    """The cluster cannot be started or reached (one clear line)."""
