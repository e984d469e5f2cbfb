"""Run geosal over an archive: ``python -m workflows.archive ARCHIVE OUT [options]``.

The same command as ``geosal submit`` (see ``geosal submit --help`` and
:mod:`geosal.archive`): ARCHIVE is a folder of GeoTIFFs, a quoted glob
pattern or a STAC Catalog / ItemCollection / Item JSON file; OUT receives one
folder per scene plus ``catalog.json``, ``summary.json`` and ``report.html``.
Exit status 0 (all scenes done), 1 (some failed) or 2 (bad invocation).
"""

from __future__ import annotations

import sys

from geosal.cli import main as geosal_main


def main(argv: list[str] | None = None) -> int:
    """``geosal submit`` with ``argv`` (default: the command line)."""
    return geosal_main(["submit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
