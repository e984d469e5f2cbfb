"""The error a user causes with a bad archive argument."""

from __future__ import annotations

from geosal.raster.errors import RasterInputError


class ArchiveError(RasterInputError):
    """The archive cannot be used as a whole: missing, empty, or an unreadable STAC file.

    A subclass of :class:`~geosal.raster.RasterInputError` (the archive is the
    user's raster input), so the command line reports it in one line with exit
    status 2. Problems with single scenes are not raised: they are recorded as
    per-scene failures.
    """
