"""The one exception type for raster problems a user can cause."""

from __future__ import annotations

from geosal.errors import GeosalError


class RasterInputError(GeosalError, ValueError):
    """A user-supplied raster or raster setting cannot be used.

    The message is a single line of the form ``"<file>: <problem>"``, fit to be
    printed as is by the command line.
    """


class StorageError(GeosalError, OSError):
    """Remote storage (an object store, an HTTP server) failed a request: the message is one line naming the URL
    and the reason (no such bucket, credentials refused, access denied, unreachable), never a secret."""
