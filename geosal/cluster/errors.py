"""Errors from the Dask layer that a user can cause."""


class ClusterError(RuntimeError):
    """The cluster cannot be started or reached (one clear line)."""
