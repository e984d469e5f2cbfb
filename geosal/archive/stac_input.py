"""Scenes from a STAC file, local or remote (``https://``, ``s3://``): a Catalog or Collection (child and item links
followed recursively), an ItemCollection, or a single Item.

Each Item gives one scene: its id is the scene's label and one of its assets
the raster. Asset hrefs are resolved relative to the file that holds the Item
(the Item's own JSON, or the ItemCollection file), as STAC says, whether that
file is a path or a URL; absolute URLs are kept as they are for GDAL to open.
Remote files are read through :mod:`geosal.raster.objects` (retries, the
storage access of :mod:`geosal.raster.credentials`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pystac
from pystac.stac_io import DefaultStacIO

from geosal.archive.errors import ArchiveError
from geosal.raster.errors import StorageError
from geosal.raster.objects import is_url, read_bytes, resolve_href, write_text

GEOTIFF_MEDIA_TYPES = ("image/tiff", "image/geotiff", "image/vnd.stac.geotiff")
"""Media type prefixes taken as GeoTIFF (``image/tiff; application=geotiff; profile=cloud-optimized`` too)."""

FALLBACK_ASSETS = ("image", "visual")
"""Asset keys used when no asset has role ``data`` or a GeoTIFF media type."""


class ObjectStacIO(DefaultStacIO):
    """pystac's reads and writes through :mod:`geosal.raster.objects`: local files, ``https://`` (read) and ``s3://``."""

    def read_text(self, source, *args, **kwargs) -> str:
        href = str(source)
        return read_bytes(href).decode() if is_url(href) else super().read_text(source, *args, **kwargs)

    def write_text(self, dest, txt: str, *args, **kwargs) -> None:
        href = str(dest)
        if is_url(href):
            write_text(href, txt)
        else:
            super().write_text(dest, txt, *args, **kwargs)


def stac_entries(path: str | Path, asset: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """``(label, source, key, error)`` for every Item in the STAC file ``path``.

    Args:
        path: JSON file (a local path, an ``https://`` or ``s3://`` URL) of type ``Catalog``, ``Collection``,
            ``FeatureCollection`` (ItemCollection) or ``Feature`` (Item).
        asset: asset key to process; an Item without it becomes an entry with
            an ``error`` (a per-scene failure), not an exception.

    Returns:
        ``label`` the item id, ``source`` the absolute path or URL of the
        asset, ``key`` a stable identifier for name disambiguation (id and
        href as written), ``error`` a one-line problem or ``None``.

    Raises:
        ArchiveError: the file is not valid JSON or not a STAC object, or a
            linked catalog or item cannot be read.
        StorageError: a remote file cannot be read (missing, refused, unreachable).
    """
    location = os.fspath(path) if is_url(path) else str(Path(path).absolute())
    try:
        data = json.loads(read_bytes(location))
    except StorageError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveError(f"{path}: not a readable STAC JSON file ({error})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    stac_io = ObjectStacIO()
    try:
        if kind == "FeatureCollection":
            collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
            items = [(item, location) for item in collection]
        elif kind == "Feature":
            item = pystac.Item.from_file(location, stac_io=stac_io)
            items = [(item, location)]
        elif kind in ("Catalog", "Collection"):
            catalog = pystac.read_file(location, stac_io=stac_io)
            items = [(item, item.get_self_href() or location) for item in catalog.get_items(recursive=True)]
        else:
            raise ArchiveError(f"{path}: not a STAC Catalog, Collection, ItemCollection or Item (type {kind!r})")
    except (ArchiveError, StorageError):
        raise
    except (OSError, ValueError, KeyError, TypeError, pystac.STACError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ArchiveError(f"{path}: cannot read the STAC catalog ({message})") from None
    return [_entry(item, base, asset) for item, base in items]


def choose_asset(item: pystac.Item, key: str | None = None) -> tuple[str, pystac.Asset]:
    """The asset of ``item`` to process: ``key`` if given, else the first with
    role ``data`` or a GeoTIFF media type, else ``image`` or ``visual``.

    Raises:
        KeyError: no suitable asset; the message lists the item's assets.
    """
    available = ", ".join(item.assets) or "none"
    if key is not None:
        if key not in item.assets:
            raise KeyError(f"item {item.id!r} has no asset {key!r} (assets: {available})")
        return key, item.assets[key]
    for name, asset in item.assets.items():
        media = (asset.media_type or "").lower()
        if "data" in (asset.roles or []) or media.startswith(GEOTIFF_MEDIA_TYPES):
            return name, asset
    for name in FALLBACK_ASSETS:
        if name in item.assets:
            return name, item.assets[name]
    raise KeyError(f"item {item.id!r} has no data or GeoTIFF asset (assets: {available}); choose one with --asset")


def _entry(item: pystac.Item, base: str, asset_key: str | None) -> tuple[str, str, str, str | None]:
    try:
        _, asset = choose_asset(item, asset_key)
    except KeyError as error:
        return item.id, base, f"{item.id}\n{base}", error.args[0]
    return item.id, resolve_href(asset.href, base), f"{item.id}\n{asset.href}", None
