"""QGIS styles, the STAC Item and the quicklook PNG: structural checks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp
from PIL import Image

from geosal.raster import (
    inspect_scene,
    make_item,
    working_grid,
    write_item,
    write_qml_pseudocolor,
    write_qml_rgba,
    write_quicklook,
)

ASSETS = {
    "combined": {"href": "combined.tif", "type": pystac.MediaType.COG, "title": "combined saliency",
                 "roles": ["data"], "raster_bands": [{"data_type": "float32", "nodata": float("nan"),
                                                      "statistics": {"minimum": 0.0, "maximum": 1.0}}]},
    "lovi": {"href": "lovi.tif", "type": pystac.MediaType.COG, "roles": ["visual"],
             "raster_bands": [{"data_type": "uint8"}] * 4},
    "zarr": {"href": "saliency.zarr", "type": "application/vnd+zarr", "roles": ["data"]},
    "thumbnail": {"href": "quicklook.png", "type": pystac.MediaType.PNG, "roles": ["thumbnail"]},
}


def test_pseudocolor_style(tmp_path):
    path = tmp_path / "combined.qml"
    write_qml_pseudocolor(path, band=1, vmin=0.0, vmax=1.0)
    assert path.read_text().startswith("<!DOCTYPE qgis")
    root = ET.parse(path).getroot()
    assert root.tag == "qgis"
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and renderer.get("band") == "1"
    items = renderer.findall("rastershader/colorrampshader/item")
    assert len(items) == 11
    assert [float(items[0].get("value")), float(items[-1].get("value"))] == [0.0, 1.0]
    assert items[0].get("color") == "#000004" and items[-1].get("color") == "#fcfdbf"  # magma's ends
    options = renderer.findall("rastershader/colorrampshader/colorramp/Option/Option")
    ramp = {option.get("name"): option.get("value") for option in options}
    assert ramp["color1"] == "0,0,4,255" and len(ramp["stops"].split(":")) == 9
    assert all(len(stop.split(";")) == 2 for stop in ramp["stops"].split(":"))


def test_rgba_style(tmp_path):
    path = tmp_path / "lovi.qml"
    write_qml_rgba(path)
    renderer = ET.parse(path).getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "multibandcolor"
    assert [renderer.get(k) for k in ("redBand", "greenBand", "blueBand", "alphaBand")] == ["1", "2", "3", "-1"]
    assert renderer.find("redContrastEnhancement/algorithm").text == "NoEnhancement"


@pytest.mark.parametrize("name", ["atlanta_pan_uint16_nodata0.tif", "las_vegas_pan_uint16_epsg4326.tif"])
def test_stac_item(scenes_dir, tmp_path, name):
    info = inspect_scene(scenes_dir / name)
    grid = working_grid(info, target_gsd_m=1.0)
    assets = {**ASSETS, "combined": {**ASSETS["combined"], "href": str(tmp_path / "combined.tif")}}
    item = make_item("scene-1", info, grid.transform(info), (grid.height, grid.width), assets,
                     {"datetime": "2024-05-01T10:00:00Z", "geosal:model": "resnet50"}, str(scenes_dir / name))
    assert any("projection" in uri for uri in item.stac_extensions)
    assert any("raster" in uri for uri in item.stac_extensions)
    assert item.properties["proj:code"] == f"EPSG:{info.crs.to_epsg()}"
    assert item.properties["proj:shape"] == [grid.height, grid.width]
    assert item.properties["proj:transform"] == list(grid.transform(info)[:6])
    assert "proj:wkt2" in item.properties and item.properties["geosal:model"] == "resnet50"
    assert item.datetime.isoformat() == "2024-05-01T10:00:00+00:00"
    lon, lat = rasterio.warp.transform(info.crs, "EPSG:4326", *([v] for v in info.affine @ (info.width / 2,
                                                                                            info.height / 2)))
    west, south, east, north = item.bbox
    assert west < lon[0] < east and south < lat[0] < north
    assert item.geometry["type"] == "Polygon"
    bands = item.assets["combined"].extra_fields["raster:bands"]
    assert bands == [{"data_type": "float32", "nodata": "nan", "statistics": {"minimum": 0.0, "maximum": 1.0}}]
    assert len(item.assets["lovi"].extra_fields["raster:bands"]) == 4
    assert [link.target for link in item.links if link.rel == "derived_from"] == [str(scenes_dir / name)]

    path = tmp_path / "item.json"
    write_item(item, path)
    written = json.loads(path.read_text())
    assert {key: asset["href"] for key, asset in written["assets"].items()} == {
        "combined": "./combined.tif", "lovi": "lovi.tif", "zarr": "saliency.zarr", "thumbnail": "quicklook.png"}
    assert not [link for link in written["links"] if link["rel"] == "self"]
    assert pystac.Item.from_file(path).bbox == pytest.approx(item.bbox)


def test_stac_item_datetime_defaults_to_now(scenes_dir):
    info = inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif")
    item = make_item("x", info, info.affine, info.shape, {}, {}, "scene.tif")
    assert item.datetime.tzinfo is not None and "datetime" in item.to_dict()["properties"]


def test_quicklook(tmp_path, scenes_dir):
    with rasterio.open(scenes_dir / "florida_neon_10cm_nodata255.tif") as dataset:
        scene = dataset.read([1, 2, 3])
    combined = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (200, 1))
    combined[:50] = np.nan
    lovi = np.full((4, 200, 200), 200, np.uint8)
    lovi[3] = 255
    lovi[3, :50] = 0
    path = tmp_path / "quicklook.png"
    write_quicklook(path, scene, combined, lovi, max_side=300)
    with Image.open(path) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width == 900 and height > 300  # three 300 x 300 panels and a caption band
    panel_top = height - 300
    for column in (450, 750):  # nodata of the combined map and of LOVI is grey
        np.testing.assert_allclose(pixels[panel_top + 10, column], 128, atol=1)
    np.testing.assert_array_equal(pixels[-10, 750], 200)
    assert (pixels[panel_top + 100, 300:600] != pixels[panel_top + 100, 300]).any()  # the colour ramp


def test_quicklook_of_a_grey_wide_scene(tmp_path):
    path = tmp_path / "quicklook.png"
    write_quicklook(path, np.zeros((1, 50, 200), np.uint8), np.zeros((50, 200)), np.zeros((4, 50, 200), np.uint8),
                    max_side=100)
    with Image.open(path) as image:
        width, height = image.size
    assert width == 300 and height - 25 == pytest.approx(25, abs=5)
