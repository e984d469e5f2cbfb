"""Find the scenes of an archive: a folder tree, a glob pattern, a GeoTIFF or a STAC file.

:func:`discover_scenes` lists them in a deterministic order (sorted paths for
folders and globs, catalog order for STAC) and gives each a safe, unique
output folder name (:mod:`geosal.archive.names`).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from geosal.archive.errors import ArchiveError
from geosal.archive.names import assign_names
from geosal.raster.objects import is_object_url, is_url, list_objects, stem

GEOTIFF_SUFFIXES = (".tif", ".tiff")
"""Suffixes searched for in a folder, compared case-insensitively (``.TIF`` too)."""

STAC_SUFFIXES = (".json", ".geojson")


@dataclass(frozen=True)
class ArchiveScene:
    """One scene of an archive.

    Attributes:
        name: output folder name under ``OUT/`` (safe and unique in the archive).
        source: raster to read: a local path or a URL GDAL understands.
        label: the original name: file stem or STAC item id.
        error: why the entry cannot be processed (for example a STAC item
            without the requested asset), or ``None``.
    """

    name: str
    source: str
    label: str
    error: str | None = None


@dataclass(frozen=True)
class _Entry:
    label: str
    source: str
    key: str
    error: str | None = None


def discover_scenes(archive: str | Path, asset: str | None = None, exclude: str | Path | None = None) -> list[ArchiveScene]:
    """The scenes of ``archive``.

    Args:
        archive: a folder (searched recursively for ``*.tif`` / ``*.tiff`` in
            any case, hidden files and folders skipped), a glob pattern (``**``
            allowed; every matching file), a single GeoTIFF, a STAC Catalog,
            Collection, ItemCollection or Item JSON file (see
            :mod:`geosal.archive.stac_input`), or the URL of a GeoTIFF or STAC file
            (``https://``, ``s3://``), or an ``s3://bucket/prefix/`` (listed like a folder).
        asset: STAC asset key to process (default: chosen per item).
        exclude: a folder (or ``s3://`` prefix) whose contents are never scenes (the output folder,
            in case it lies inside the archive).

    Raises:
        ArchiveError: the archive does not exist, holds no scene, or its STAC
            file cannot be read.
        StorageError: a remote archive cannot be read or listed (missing, refused, unreachable).
    """
    text = str(archive)
    path = Path(text)
    if is_url(text):
        entries, kind = _remote_entries(text, asset, exclude)
    elif path.is_dir():
        entries = _folder_entries(path, exclude)
        kind = "folder"
    elif path.is_file() and (path.suffix.lower() in STAC_SUFFIXES or _looks_like_json(path)):
        from geosal.archive.stac_input import stac_entries

        entries = [_Entry(*entry) for entry in stac_entries(path, asset)]
        kind = "STAC file"
    elif path.is_file():
        entries = [_Entry(path.stem, str(path.absolute()), path.name)]
        kind = "file"
    elif glob.has_magic(text):
        entries = _glob_entries(text, exclude)
        kind = "glob pattern"
        if not entries:
            raise ArchiveError(f"{text}: the glob pattern matches no file")
    else:
        raise ArchiveError(f"{text}: no such folder, file or glob pattern")
    if not entries:
        raise ArchiveError(f"{text}: the {kind} holds no scene (looked for {', '.join(GEOTIFF_SUFFIXES)} files)"
                           if kind in ("folder", "bucket prefix") else f"{text}: the {kind} lists no item")
    entries = _unique_sources(entries)
    names = assign_names([(e.label, e.key) for e in entries])
    return [ArchiveScene(name, e.source, e.label, e.error) for name, e in zip(names, entries)]


def _remote_entries(url: str, asset: str | None, exclude: str | Path | None) -> tuple[list[_Entry], str]:
    """The entries of a remote archive and what it is: a STAC file or a GeoTIFF by its suffix, else an ``s3://``
    prefix, listed for GeoTIFFs like a folder (an HTTP server cannot be listed)."""
    suffix = PurePosixPath(urlparse(url).path).suffix.lower()
    if suffix in STAC_SUFFIXES:
        from geosal.archive.stac_input import stac_entries

        return [_Entry(*entry) for entry in stac_entries(url, asset)], "STAC file"
    if suffix in GEOTIFF_SUFFIXES:
        return [_Entry(stem(url), url, PurePosixPath(urlparse(url).path).name)], "file"
    if not is_object_url(url):
        raise ArchiveError(f"{url}: an {urlparse(url).scheme}:// archive must be a STAC JSON file or a GeoTIFF "
                           "(a web server's folders cannot be listed)")
    prefix = url.rstrip("/")
    excluded = os.fspath(exclude).rstrip("/") + "/" if exclude is not None and is_url(exclude) else None
    found = [u for u in list_objects(prefix, GEOTIFF_SUFFIXES) if excluded is None or not u.startswith(excluded)]
    return [_Entry(stem(u), u, u[len(prefix):].lstrip("/")) for u in found], "bucket prefix"


def _folder_entries(root: Path, exclude: str | Path | None) -> list[_Entry]:
    excluded = Path(exclude).absolute() if exclude is not None else None
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.suffix.lower() not in GEOTIFF_SUFFIXES or any(part.startswith(".") for part in relative.parts):
            continue
        if not path.is_file() or _inside(path.absolute(), excluded):
            continue
        found.append((relative.as_posix(), path))
    found.sort()
    return [_Entry(path.stem, str(path.absolute()), relative) for relative, path in found]


def _glob_entries(pattern: str, exclude: str | Path | None) -> list[_Entry]:
    excluded = Path(exclude).absolute() if exclude is not None else None
    matches = sorted(glob.glob(pattern, recursive=True))
    return [
        _Entry(Path(m).stem, str(Path(m).absolute()), Path(m).as_posix())
        for m in matches
        if Path(m).is_file() and not _inside(Path(m).absolute(), excluded)
    ]


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def _looks_like_json(path: Path) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(64).lstrip().startswith(b"{")
    except OSError:
        return False


def _unique_sources(entries: list[_Entry]) -> list[_Entry]:
    """Drop repeated ``(label, source)`` pairs (the same item listed twice), keeping the first."""
    seen, unique = set(), []
    for entry in entries:
        if (entry.label, entry.source) not in seen:
            seen.add((entry.label, entry.source))
            unique.append(entry)
    return unique


__all__ = ["ArchiveScene", "GEOTIFF_SUFFIXES", "discover_scenes"]
