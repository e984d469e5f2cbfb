"""The scenes a viewer shows, found from the paths it was given.

A path is one of:

- a scene's output folder ``OUT/NAME/`` (it holds ``saliency.zarr``), or the
  folder a run is writing, ``OUT/.NAME.partial/``; ``OUT/NAME`` may also be
  given before it exists while its partial folder does (a run in progress);
- an archive's output folder (``catalog.json``, ``summary.json`` and one
  folder per scene, as ``geosal submit`` writes it, finished or not), or its
  ``catalog.json``; any folder whose sub-folders are scene outputs counts.

Archives are scanned again on every listing, so scenes appear as a running
``geosal submit`` starts them, and each scene is looked up where it is now:
its final folder once the run has renamed it, its partial folder before.
Opened outputs are cached until their metadata or location changes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from geosal.viewer.errors import NotFound, ViewerError
from geosal.viewer.scene import STORE, SceneOutput

PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial$")


@dataclass(frozen=True)
class SceneEntry:
    """A scene: ``id`` (unique in the viewer, URL-safe), ``name``, where its output is or will be, and the
    failure ``summary.json`` records for it (``{"error": ..., "stage": ...}``), if any."""

    id: str
    name: str
    final: Path
    partial: Path
    failure: dict | None = None
    source: str | None = None

    def folder(self) -> tuple[Path, bool] | None:
        """``(folder, complete)``: the final folder when it holds a store, else the partial one; None when neither does.

        The final folder is looked at again after the partial one: a run that
        renames its partial folder between the first two looks is still found.
        """
        if (self.final / STORE).is_dir():
            return self.final, True
        if (self.partial / STORE).is_dir():
            return self.partial, False
        if (self.final / STORE).is_dir():
            return self.final, True
        return None


def _scene_paths(folder: Path) -> tuple[Path, Path]:
    """``(final, partial)`` folders of the scene output ``folder`` (either of the two)."""
    match = PARTIAL.match(folder.name)
    if match:
        return folder.parent / match["name"], folder
    return folder, folder.parent / f".{folder.name}.partial"


@dataclass(frozen=True)
class _Root:
    """A path the viewer was given: one scene (``archive`` False) or an archive folder."""

    path: Path
    archive: bool


def resolve_roots(paths: list[str | os.PathLike[str]]) -> list[_Root]:
    """Check the paths and say what each is (see the module docstring).

    Raises:
        ViewerError: a path holds no geosal output (one line naming it).
    """
    if not paths:
        raise ViewerError("no path given: pass a scene output folder or an archive output folder")
    roots = []
    for given in paths:
        path = Path(given).expanduser().absolute()
        if path.is_file() and path.name == "catalog.json":
            path = path.parent
        final, partial = _scene_paths(path)
        if (final / STORE).is_dir() or (partial / STORE).is_dir():
            roots.append(_Root(path, archive=False))
        elif path.is_dir() and (_archive_records(path) or _scene_folders(path)):
            roots.append(_Root(path, archive=True))
        elif not path.exists():
            raise ViewerError(f"{given}: no such file or folder (and no run in progress there)")
        else:
            raise ViewerError(f"{given}: no geosal output here (expected a scene folder with {STORE}, "
                              "or an archive folder with catalog.json or scene folders)")
    return roots


def _archive_records(folder: Path) -> dict[str, dict]:
    """Scene name -> record, from ``summary.json`` (status, error, stage, source) and ``catalog.json`` (item links)."""
    records: dict[str, dict] = {}
    summary = _read_json(folder / "summary.json")
    for scene in (summary or {}).get("scenes", []):
        if isinstance(scene, dict) and scene.get("name"):
            records[str(scene["name"])] = scene
    catalog = _read_json(folder / "catalog.json")
    for link in (catalog or {}).get("links", []):
        href = str(link.get("href", ""))
        if link.get("rel") == "item" and href.endswith("/item.json"):
            records.setdefault(Path(href).parent.name, {})
    return records


def _scene_folders(folder: Path) -> list[str]:
    """Names of the scene outputs directly in ``folder``: finished (``NAME/``) or in progress (``.NAME.partial/``)."""
    names = []
    try:
        children = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    for child in children:
        if child.is_dir() and (Path(child.path) / STORE).is_dir():
            match = PARTIAL.match(child.name)
            names.append(match["name"] if match else child.name)
    return list(dict.fromkeys(names))


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "scene"


class Catalog:
    """The scenes under the given paths, listed afresh on each call, with their opened outputs cached."""

    def __init__(self, paths: list[str | os.PathLike[str]]):
        self.roots = resolve_roots(paths)
        self._lock = threading.Lock()
        self._outputs: dict[str, tuple[tuple, SceneOutput]] = {}
        self._entries: tuple[tuple, list[SceneEntry]] | None = None

    @property
    def is_archive(self) -> bool:
        """True when an archive (or several paths) was given: the page starts with the list of scenes."""
        return len(self.roots) > 1 or any(root.archive for root in self.roots)

    def entries(self) -> list[SceneEntry]:
        """Every scene, in the order of the paths (archives: ``summary.json``'s order, then the folders found).

        Listed again only when an archive folder, its ``summary.json`` or its
        ``catalog.json`` has changed (their modification times).
        """
        stamp = tuple(_stamp(path) for root in self.roots if root.archive
                      for path in (root.path, root.path / "summary.json", root.path / "catalog.json"))
        with self._lock:
            if self._entries and self._entries[0] == stamp:
                return self._entries[1]
        found = self._scan()
        with self._lock:
            self._entries = (stamp, found)
        return found

    def _scan(self) -> list[SceneEntry]:
        found: list[SceneEntry] = []
        used: set[str] = set()
        for root in self.roots:
            if not root.archive:
                final, partial = _scene_paths(root.path)
                found.append(self._entry(final.name, final, partial, {}, used))
                continue
            records = _archive_records(root.path)
            for name in list(records) + [n for n in _scene_folders(root.path) if n not in records]:
                record = records.get(name, {})
                found.append(self._entry(name, root.path / name, root.path / f".{name}.partial", record, used))
        return found

    @staticmethod
    def _entry(name: str, final: Path, partial: Path, record: dict, used: set[str]) -> SceneEntry:
        base = _slug(name)
        identifier, n = base, 1
        while identifier in used:
            n += 1
            identifier = f"{base}-{n}"
        used.add(identifier)
        failure = {"error": record.get("error"), "stage": record.get("stage")} if record.get("status") == "failed" else None
        return SceneEntry(identifier, name, final, partial, failure, record.get("source"))

    def entry(self, scene_id: str) -> SceneEntry:
        """The scene ``scene_id``.

        Raises:
            NotFound: no scene has this id.
        """
        for entry in self.entries():
            if entry.id == scene_id:
                return entry
        raise NotFound(f"no scene {scene_id!r}")

    def output(self, entry: SceneEntry) -> SceneOutput | None:
        """The scene's output as it is now (None when nothing is written yet, e.g. a failed scene).

        Opened once per location and metadata version: a run that renames its
        partial folder, or updates the store's metadata, gets a fresh one.
        """
        where = entry.folder()
        if where is None:
            return None
        try:
            return self._open(entry, *where)
        except ViewerError:
            again = entry.folder()  # the run may have renamed its partial folder while it was being opened
            if again is None or again == where:
                raise
            return self._open(entry, *again)

    def _open(self, entry: SceneEntry, folder: Path, complete: bool) -> SceneOutput:
        """The output in ``folder``, from the cache while its location and metadata are unchanged."""
        try:
            stamp = (str(folder), complete, (folder / STORE / ".zmetadata").stat().st_mtime_ns)
        except OSError:
            stamp = (str(folder), complete, None)
        with self._lock:
            cached = self._outputs.get(entry.id)
            if cached and cached[0] == stamp:
                return cached[1]
        output = SceneOutput(folder, complete)
        with self._lock:
            self._outputs[entry.id] = (stamp, output)
        return output
