"""``OUT/catalog.json``: a self-contained STAC Catalog of the scenes' ``item.json`` Items."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pystac

from geosal.archive.stac_input import ObjectStacIO
from geosal.raster.objects import is_file, is_url, join

CATALOG_ID = "geosal-saliency"


def write_catalog(out: str | Path, names: Sequence[str], description: str | None = None) -> str | Path:
    """Write ``out/catalog.json`` linking ``out/<name>/item.json`` for each name that has one.

    The Items are read back from their files and saved in place with
    relative ``root`` and ``parent`` links (asset hrefs stay relative to each
    Item), so the folder can be moved or published as a whole:
    ``pystac.Catalog.from_file(out / "catalog.json").get_items(recursive=True)``
    lists them. Scenes without an ``item.json`` (failed, STAC output disabled or no
    CRS) are left out. ``out`` may be an ``s3://`` prefix: the links are the same.

    Returns:
        The path (or URL) of ``catalog.json``.
    """
    remote = is_url(out)
    out = os.fspath(out).rstrip("/") if remote else Path(out).absolute()
    stac_io = ObjectStacIO()
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        title="geosal saliency maps",
        description=description or "SMOE Scale saliency layers computed by geosal, one item per scene.",
    )
    items: list[tuple[pystac.Item, str]] = []
    for name in names:
        path = join(out, name, "item.json")
        if is_file(path):
            item = pystac.Item.from_file(path, stac_io=stac_io)
            item.clear_links("root")
            item.clear_links("parent")
            catalog.add_item(item)
            items.append((item, path))
    catalog.set_self_href(join(out, "catalog.json"))
    for item, path in items:
        item.set_self_href(path)
        item.make_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED, stac_io=stac_io)
    return join(out, "catalog.json") if remote else out / "catalog.json"
