"""``python -m geosal.cli``: the same as the ``geosal`` command."""

from geosal.cli import entry

entry()
