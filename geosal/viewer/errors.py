"""Errors of the viewer: one line each, fit to print or to send as an HTTP reason."""

from __future__ import annotations

from geosal.errors import GeosalError


class ViewerError(GeosalError):
    """A problem the user can fix: a path with no geosal output, a port in use, a bad request."""


class NotFound(ViewerError, LookupError):
    """Nothing there: an unknown scene or layer, a tile outside the grid, a point outside the scene (HTTP 404)."""


class BadRequest(ViewerError, ValueError):
    """A request the viewer cannot answer as asked: a malformed number, an unknown colormap (HTTP 400)."""
