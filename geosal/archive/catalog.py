"""``OUT/catalog.json``: a self-contained STAC Catalog of the scenes' ``item.json`` Items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pystac

CATALOG_ID = "geosal-saliency"


def write_catalog(out: str | Path, names: Sequence[str], description: str | None = None) -> Path:
    """Write ``out/catalog.json`` linking ``out/<name>/item.json`` for each name that has one.

    The Items are read back from their files and saved in place with
    relative ``root`` and ``parent`` links (asset hrefs stay relative to each
    Item), so the folder can be moved or published as a whole:
    ``pystac.Catalog.from_file(out / "catalog.json").get_items(recursive=True)``
    lists them. Scenes without an ``item.json`` (failed, STAC output disabled or no
    CRS) are left out.

    Returns:
        The path of ``catalog.json``.
    """
    out = Path(out).absolute()
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        title="geosal saliency maps",
        description=description or "SMOE Scale saliency layers computed by geosal, one item per scene.",
    )
    items: list[tuple[pystac.Item, Path]] = []
    for name in names:
        path = out / name / "item.json"
        if path.is_file():
            item = pystac.Item.from_file(str(path))
            item.clear_links("root")
            item.clear_links("parent")
            catalog.add_item(item)
            items.append((item, path))
    catalog.set_self_href(str(out / "catalog.json"))
    for item, path in items:
        item.set_self_href(str(path))
        item.make_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return out / "catalog.json"
