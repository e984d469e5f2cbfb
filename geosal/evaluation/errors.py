"""The error of the evaluation package, importable without torch."""

from __future__ import annotations

from geosal.errors import GeosalError


class EvaluationError(GeosalError, ValueError):
    """A request the evaluation cannot serve (unknown method, wrong model or data); one line for the user."""
