"""The root of every error a user can cause and fix.

Each package raises its own subclass (``ConfigError``, ``RasterInputError``,
``ModelLoadError``, ``PlanError``, ``OutputError``, ``ClusterError``, ...), whose
message is one line fit to print as is. The command line catches
:class:`GeosalError` and prints that line with exit status 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class GeosalError(Exception):
    """A problem with the user's input, configuration or environment; ``str(error)`` is one line."""
