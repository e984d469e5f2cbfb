"""Archives: run the scene pipeline over thousands of scenes (``geosal submit``).

An archive is a folder of GeoTIFFs, a glob pattern or a STAC Catalog /
ItemCollection / Item file. Every scene is planned up front (cheap, no
model); scenes whose planning fails are recorded and skipped; the others run
on one shared executor with a few scenes in flight. ``OUT/`` then holds one
folder per scene plus ``catalog.json`` (STAC), ``summary.json`` and
``report.html``.

Modules: :mod:`~geosal.archive.sources` (folder and glob discovery),
:mod:`~geosal.archive.stac_input` (STAC inputs), :mod:`~geosal.archive.names`
(safe output folder names), :mod:`~geosal.archive.outcome` (per-scene records),
:mod:`~geosal.archive.submit` (planning and execution), and the writers
:mod:`~geosal.archive.catalog`, :mod:`~geosal.archive.summary`,
:mod:`~geosal.archive.report`.
"""

from geosal.archive.errors import ArchiveError
from geosal.archive.names import assign_names, safe_name
from geosal.archive.outcome import ArchiveResult, SceneOutcome
from geosal.archive.sources import ArchiveScene, discover_scenes
from geosal.archive.submit import execute_scenes, plan_archive, submit_archive

__all__ = [
    "ArchiveError", "ArchiveResult", "ArchiveScene", "SceneOutcome", "assign_names", "discover_scenes",
    "execute_scenes", "plan_archive", "safe_name", "submit_archive",
]
