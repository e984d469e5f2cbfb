"""Scenes from a local STAC file: a Catalog or Collection (child and item links
followed recursively), an ItemCollection, or a single Item.

Each Item gives one scene: its id is the scene's label and one of its assets
the raster. Asset hrefs are resolved relative to the file that holds the Item
(the Item's own JSON, or the ItemCollection file); URLs are kept as they are
for GDAL to open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pystac

from geosal.archive.errors import ArchiveError

GEOTIFF_MEDIA_TYPES = ("image/tiff", "image/geotiff", "image/vnd.stac.geotiff")
"""Media type prefixes taken as GeoTIFF (``image/tiff; application=geotiff; profile=cloud-optimized`` too)."""

FALLBACK_ASSETS = ("image", "visual")
"""Asset keys used when no asset has role ``data`` or a GeoTIFF media type."""


def stac_entries(path: Path, asset: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """``(label, source, key, error)`` for every Item in the STAC file ``path``.

    Args:
        path: local JSON file of type ``Catalog``, ``Collection``,
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
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArchiveError(f"{path}: not a readable STAC JSON file ({error})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "FeatureCollection":
            collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
            items = [(item, str(path.absolute())) for item in collection]
        elif kind == "Feature":
            item = pystac.Item.from_file(str(path.absolute()))
            items = [(item, str(path.absolute()))]
        elif kind in ("Catalog", "Collection"):
            catalog = pystac.read_file(str(path.absolute()))
            items = [(item, item.get_self_href() or str(path.absolute())) for item in catalog.get_items(recursive=True)]
        else:
            raise ArchiveError(f"{path}: not a STAC Catalog, Collection, ItemCollection or Item (type {kind!r})")
    except ArchiveError:
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
    return item.id, absolute_href(asset.href, base), f"{item.id}\n{asset.href}", None


def absolute_href(href: str, base: str) -> str:
    """``href`` resolved against the file ``base``: a local absolute path, or the URL unchanged."""
    parsed = urlparse(href)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme and len(parsed.scheme) > 1:  # http(s), s3, gs... (one letter: a Windows drive)
        return href
    if os.path.isabs(href):
        return os.path.normpath(href)
    return os.path.normpath(os.path.join(os.path.dirname(base), href))
