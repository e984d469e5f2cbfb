"""Finding the scenes of an archive: folders, globs, STAC files, asset choice, bad archives."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pystac
import pytest

from geosal.archive import ArchiveError, discover_scenes
from geosal.archive.stac_input import choose_asset
from geosal.cli import main


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def item(item_id: str, assets: dict[str, pystac.Asset]) -> pystac.Item:
    result = pystac.Item(item_id, geometry=None, bbox=None, datetime=datetime(2024, 1, 1, tzinfo=timezone.utc), properties={})
    for key, asset in assets.items():
        result.add_asset(key, asset)
    return result


def test_folder_is_searched_recursively_and_sorted(tmp_path):
    for relative in ("b.tif", "a/z.TIF", "a/y.tiff", "c/x.tif", "notes.txt", ".hidden/h.tif", "a/.h.tif"):
        touch(tmp_path / "arch" / relative)
    scenes = discover_scenes(tmp_path / "arch")
    assert [s.name for s in scenes] == ["y", "z", "b", "x"]  # sorted by path: a/y.tiff, a/z.TIF, b.tif, c/x.tif
    assert all(Path(s.source).is_absolute() and s.error is None for s in scenes)


def test_output_folder_inside_the_archive_is_not_an_input(tmp_path):
    touch(tmp_path / "scene.tif")
    touch(tmp_path / "out" / "scene" / "combined.tif")
    assert [s.name for s in discover_scenes(tmp_path, exclude=tmp_path / "out")] == ["scene"]


def test_glob_pattern(tmp_path):
    for relative in ("x/one.tif", "y/two.tif", "y/three.jp2"):
        touch(tmp_path / relative)
    assert [s.label for s in discover_scenes(str(tmp_path / "*" / "*.tif"))] == ["one", "two"]
    assert [s.label for s in discover_scenes(str(tmp_path / "**" / "t*"))] == ["three", "two"]


@pytest.mark.parametrize("case", ["missing", "empty folder", "glob without match", "not stac", "bad json"])
def test_unusable_archives_raise(tmp_path, case):
    archive = {
        "missing": tmp_path / "nowhere",
        "empty folder": tmp_path,
        "glob without match": tmp_path / "*.tif",
        "not stac": tmp_path / "other.json",
        "bad json": tmp_path / "broken.json",
    }[case]
    (tmp_path / "other.json").write_text('{"type": "Other"}')
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ArchiveError):
        discover_scenes(str(archive))


@pytest.mark.parametrize("case", ["missing", "empty"])
def test_unusable_archive_exits_2(tmp_path, capsys, case):
    archive = tmp_path / ("nowhere" if case == "missing" else "empty")
    if case == "empty":
        archive.mkdir()
        touch(archive / "readme.txt")
    assert main(["submit", str(archive), str(tmp_path / "out"), "--scheduler", "in-process"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("geosal: error: ") and len(error.strip().splitlines()) == 1


def test_item_collection_hrefs_are_relative_to_the_json_file(tmp_path):
    features = [
        item("first", {"thumbnail": pystac.Asset("thumbs/1.png", roles=["thumbnail"]),
                       "data": pystac.Asset("data/1.tif", media_type=pystac.MediaType.COG)}).to_dict(transform_hrefs=False),
        item("second", {"visual": pystac.Asset("/abs/2.tif")}).to_dict(transform_hrefs=False),
        item("third", {"B1": pystac.Asset("https://example.com/3.tif", roles=["data"])}).to_dict(transform_hrefs=False),
        item("fourth", {"metadata": pystac.Asset("meta.xml", roles=["metadata"])}).to_dict(transform_hrefs=False),
    ]
    path = tmp_path / "stac" / "items.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    scenes = discover_scenes(path)
    assert [s.name for s in scenes] == ["first", "second", "third", "fourth"]
    assert scenes[0].source == str(tmp_path / "stac" / "data" / "1.tif")
    assert scenes[1].source == "/abs/2.tif"
    assert scenes[2].source == "https://example.com/3.tif"
    assert scenes[3].error and "no data or GeoTIFF asset" in scenes[3].error and "--asset" in scenes[3].error
    picked = discover_scenes(path, asset="visual")
    assert picked[1].error is None and all("no asset 'visual'" in s.error for s in (picked[0], picked[2], picked[3]))


def test_catalog_children_are_followed(tmp_path):
    root = pystac.Catalog("root", "an archive")
    child = pystac.Catalog("2024", "a year")
    root.add_child(child)
    root.add_item(item("top", {"image": pystac.Asset("./top.tif")}))
    child.add_item(item("../deep", {"data": pystac.Asset("./deep.tif", roles=["data"])}))
    files = pystac.layout.CustomLayoutStrategy(  # item files named by position: the ids are not path-safe
        item_func=lambda it, parent: f"{parent}/items/{'deep' if 'deep' in it.id else it.id}/item.json")
    root.normalize_hrefs(str(tmp_path / "catalog"), strategy=files)
    root.save(pystac.CatalogType.SELF_CONTAINED)
    scenes = discover_scenes(tmp_path / "catalog" / "catalog.json")
    by_label = {s.label: s for s in scenes}
    assert set(by_label) == {"top", "../deep"}
    assert by_label["../deep"].name == "deep"  # traversal in an item id does not leak into the output path
    deep_item = Path(pystac.Catalog.from_file(str(tmp_path / "catalog" / "catalog.json"))
                     .get_child("2024").get_items().__next__().get_self_href())
    assert by_label["../deep"].source == str(deep_item.parent / "deep.tif")  # relative to the item's own file
    assert by_label["top"].source == str(tmp_path / "catalog" / "items" / "top" / "top.tif")


def test_single_item_file(tmp_path):
    single = item("lonely", {"image": pystac.Asset("lonely.tif", media_type="image/tiff; application=geotiff")})
    single.set_self_href(str(tmp_path / "lonely.json"))
    single.save_object(include_self_link=False)
    [scene] = discover_scenes(tmp_path / "lonely.json")
    assert (scene.name, scene.source) == ("lonely", str(tmp_path / "lonely.tif"))


def test_asset_choice_order():
    assets = {"thumb": pystac.Asset("t.png", media_type="image/png"), "visual": pystac.Asset("v.tif"),
              "analytic": pystac.Asset("a.tif", media_type="image/tiff; application=geotiff; profile=cloud-optimized")}
    assert choose_asset(item("x", assets))[0] == "analytic"  # GeoTIFF media type wins over the visual fallback
    assert choose_asset(item("x", {k: assets[k] for k in ("thumb", "visual")}))[0] == "visual"
    assert choose_asset(item("x", assets), "thumb")[0] == "thumb"
    with pytest.raises(KeyError, match="no asset 'B4'"):
        choose_asset(item("x", assets), "B4")
