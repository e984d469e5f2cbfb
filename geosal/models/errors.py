"""The one error type for every model-loading failure a user can cause."""

from geosal.errors import GeosalError


class ModelLoadError(GeosalError, ValueError):
    """A model could not be built or loaded; the message is one line saying why and what to do."""
