"""The one error type for every model-loading failure a user can cause."""


class ModelLoadError(ValueError):
    """A model could not be built or loaded; the message is one line saying why and what to do."""
