"""The viewer's HTTP API on real outputs: scenes, tiles against the COGs and the Zarr store, point values, 404s."""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import pyproj
import pytest
import rasterio
import rioxarray
import torch
import xarray as xr
import zarr
from PIL import Image

from geosal.raster.colormaps import apply_colormap, colormap
from geosal.saliency.lovi import lovi
from geosal.saliency.normalize import normal_cdf
from geosal.viewer import Catalog, ViewerError, serving
from tests.viewer.conftest import ARCHIVE_SCENES, FAST_CAM_SCENE, SINGLE, http_get


@pytest.fixture(scope="module")
def server(outputs):
    with serving([outputs.single, outputs.archive]) as running:
        yield running


@pytest.fixture(scope="module")
def scenes(server):
    response = http_get(server.url + "api/scenes")
    assert response.status == 200
    return {scene["id"]: scene for scene in response.json()}


def get(server, path):
    return http_get(server.url + path.lstrip("/"))


def folder_of(outputs, scene_id):
    return outputs.single if scene_id == SINGLE else outputs.archive / scene_id


def npy(response) -> np.ndarray:
    assert response.status == 200, response.body
    return np.load(io.BytesIO(response.body))


def rgba_png(response) -> np.ndarray:
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.body)).convert("RGBA"))


def zarr_values(folder, array) -> np.ndarray:
    """``array`` of the scene's store as xarray decodes it (CF scale factor, fill value), ``[bands, rows, cols]``."""
    values = xr.open_zarr(folder / "saliency.zarr")[array].values
    return values.reshape(-1, *values.shape[-2:])


def cog_values(path) -> np.ndarray:
    """A COG as its reader sees it: a map decoded with GDAL's scale and mask (rioxarray), an RGB image with
    GDAL's mask as alpha."""
    with rasterio.open(path) as dataset:
        if dataset.count >= 3:
            return np.concatenate([dataset.read((1, 2, 3)), dataset.dataset_mask()[None]])
    return rioxarray.open_rasterio(path, mask_and_scale=True).values


def served_values(folder, layer) -> np.ndarray:
    """What a layer's tiles should hold, from where the API says the layer comes from."""
    if layer["origin"] == "cog":
        return cog_values(folder / f"{layer['id']}.tif")
    return zarr_values(folder, layer["array"])


def test_scenes_are_listed_with_crs_bounds_layers_and_status(outputs, scenes):
    assert list(scenes) == [SINGLE, *ARCHIVE_SCENES, "truncated"]
    assert {s["status"] for i, s in scenes.items() if i != "truncated"} == {"complete"}
    failed = scenes["truncated"]
    assert failed["status"] == "failed" and failed["stage"] == "plan" and "truncated" in failed["error"]
    assert failed["layers"] == [] and failed["bounds"] is None
    single = scenes[SINGLE]
    assert single["crs"]["code"] == "EPSG:4326" and single["crs"]["geographic"]
    assert scenes["netherlands_25cm_tiled"]["crs"]["code"] == "EPSG:28992"
    assert "+proj=sterea" in scenes["netherlands_25cm_tiled"]["crs"]["proj4"]
    for scene_id in (SINGLE, *ARCHIVE_SCENES):
        with rasterio.open(folder_of(outputs, scene_id) / "combined.tif") as cog:
            assert scenes[scene_id]["bounds"] == pytest.approx(list(cog.bounds), abs=1e-9)
        layers = [layer["id"] for layer in scenes[scene_id]["layers"]]
        assert layers == ["scene", "combined", "lovi", "scale_1", "scale_2", "scale_3", "scale_4", "scale_5"]
        assert scenes[scene_id]["progress"]["pass1_done"] == scenes[scene_id]["progress"]["blocks"] > 0


def test_each_layer_is_tiled_on_its_own_grid(outputs, scenes):
    scene = scenes[SINGLE]
    grids = zarr.open_group(str(outputs.single / "saliency.zarr"), mode="r").attrs["grids"]
    for layer in scene["layers"]:
        if layer["origin"] == "cog":  # the COG's grid, from the file
            with rasterio.open(outputs.single / f"{layer['id']}.tif") as cog:
                shape, transform = [cog.height, cog.width], list(cog.transform)[:6]
        else:  # the store's grid of the array, from its record
            record = next(r for r in grids.values() if layer["array"] in r["arrays"])
            shape, transform = record["shape"], record["transform"]
        assert layer["grid"]["shape"] == shape
        assert layer["grid"]["transform"] == pytest.approx(transform, rel=1e-12)
        a, e = transform[0], transform[4]
        tiles = layer["tiles"]
        assert tiles["origin"] == pytest.approx([transform[2], transform[5]])
        assert tiles["resolutions"][-1] == pytest.approx(a)  # the finest level is the grid's own pixels
        assert tiles["tile_size"] == pytest.approx([256, 256 * abs(e) / a])  # non-square degrees stay pixel-aligned
        assert 256 * 2 ** (tiles["levels"] - 1) >= max(shape)  # the coarsest level is one tile
        assert tiles["levels"] == 1 or max(shape) > 256 * 2 ** (tiles["levels"] - 2)  # and no coarser
    origins = {layer["id"]: layer["origin"] for layer in scene["layers"]}
    assert origins == {"scene": "zarr", "combined": "cog", "lovi": "cog", **{f"scale_{k}": "zarr" for k in range(1, 6)}}
    assert scene["layers"][0]["grid"]["shape"] != scene["layers"][1]["grid"]["shape"]  # the scene and the maps differ


@pytest.mark.parametrize("scene_id", [SINGLE, "netherlands_25cm_tiled"])
def test_finest_tiles_hold_the_stored_values(outputs, server, scenes, scene_id):
    scene = scenes[scene_id]
    folder = folder_of(outputs, scene_id)
    statistics = zarr.open_group(str(folder / "saliency.zarr"), mode="r").attrs["scene_statistics"]
    for layer in scene["layers"]:
        finest = layer["tiles"]["levels"] - 1
        stored = served_values(folder, layer)
        rows, cols = stored.shape[-2:]
        for x, y in [(0, 0), (math.ceil(cols / 256) - 1, math.ceil(rows / 256) - 1)]:
            base = f"api/scenes/{scene_id}/tiles/{layer['id']}/{finest}/{x}/{y}"
            expected = stored[:, y * 256:(y + 1) * 256, x * 256:(x + 1) * 256]
            h, w = expected.shape[-2:]
            raw = npy(get(server, base + ".npy?values=raw"))
            assert raw.shape == (stored.shape[0], 256, 256)
            np.testing.assert_array_equal(raw[:, :h, :w], expected)
            if layer["kind"] == "values":
                assert np.isnan(raw[:, h:, :]).all() and np.isnan(raw[:, :, w:]).all()  # outside the grid
            if layer["scale"]:
                k = layer["scale"]["index"] - 1
                independent = normal_cdf(torch.from_numpy(expected.astype(np.float32)),
                                         mean=statistics["mean"][k], std=statistics["std"][k]).numpy()
                normalised = npy(get(server, base + ".npy"))[:, :h, :w]
                np.testing.assert_allclose(normalised, np.where(np.isnan(expected), np.nan, independent), atol=1e-6)


def test_the_combined_cog_agrees_with_the_store_and_coarser_tiles_come_from_the_overviews(outputs, server, scenes):
    combined = zarr_values(outputs.single, "combined")[0]  # 16-bit codes in the store, 8-bit in the COG
    rows, cols = combined.shape
    finest = next(layer for layer in scenes[SINGLE]["layers"] if layer["id"] == "combined")["tiles"]["levels"] - 1
    tile = npy(get(server, f"api/scenes/{SINGLE}/tiles/combined/{finest}/1/1.npy"))[0][:rows - 256, :cols - 256]
    np.testing.assert_array_equal(np.isnan(tile), np.isnan(combined[256:, 256:]))
    assert np.nanmax(np.abs(tile - combined[256:, 256:])) <= 0.5 / 254 + 0.5 / 65534 + 1e-6  # two roundings apart
    coarse = npy(get(server, f"api/scenes/{SINGLE}/tiles/combined/{finest - 1}/0/0.npy"))[0]  # factor 2: an overview
    path = outputs.single / "combined.tif"
    with rasterio.open(path) as cog, rasterio.open(path, OVERVIEW_LEVEL=0) as overview:
        codes = overview.read(1, masked=True)  # the band scale is the full-resolution band's
        overview_values = set((codes.compressed().astype(np.float32) * np.float32(cog.scales[0])).tolist())
    assert np.isfinite(coarse).sum() > 150 * 150
    assert set(coarse[np.isfinite(coarse)].tolist()) <= overview_values  # nearest: only values the overview holds
    scale_1 = zarr_values(outputs.single, "scale_1")[0]
    coarse_scale = npy(get(server, f"api/scenes/{SINGLE}/tiles/scale_1/0/0/0.npy?values=raw"))[0]
    np.testing.assert_array_equal(coarse_scale[:240, :195], scale_1[::2, ::2])  # Zarr: every second pixel


def test_png_tiles_are_the_values_through_the_colormap(server, scenes):
    base = f"api/scenes/{SINGLE}/tiles"
    levels = {layer["id"]: layer["tiles"]["levels"] - 1 for layer in scenes[SINGLE]["layers"]}
    last = f"{levels['combined']}/1/1"  # the last tile at the finest level: partly outside the grid
    values = npy(get(server, f"{base}/combined/{last}.npy"))[0]
    png = rgba_png(get(server, f"{base}/combined/{last}.png?colormap=viridis&min=0.2&max=0.8"))
    np.testing.assert_array_equal(png, apply_colormap(values, "viridis", 0.2, 0.8))
    assert (png[..., 3][np.isnan(values)] == 0).all() and (png[..., 3][np.isfinite(values)] == 255).all()
    raw = npy(get(server, f"{base}/scale_2/0/0/0.npy?values=raw"))[0]
    png = rgba_png(get(server, f"{base}/scale_2/0/0/0.png?values=raw&colormap=gray&min=2&max=12"))
    np.testing.assert_array_equal(png, apply_colormap(raw, "gray", 2, 12))
    lovi_values = npy(get(server, f"{base}/lovi/{last}.npy"))
    assert lovi_values.shape == (4, 256, 256) and lovi_values[3, 255, 255] == 0  # alpha: GDAL's mask, 0 outside
    np.testing.assert_array_equal(rgba_png(get(server, f"{base}/lovi/{last}.png")), np.moveaxis(lovi_values, 0, -1))
    scene = npy(get(server, f"{base}/scene/{levels['scene']}/0/0.npy"))[0]  # a 16-bit scene: the model's uint8 input, grey
    png = rgba_png(get(server, f"{base}/scene/{levels['scene']}/0/0.png"))
    assert scene.dtype == np.uint8
    np.testing.assert_array_equal(png[..., 0], scene)
    np.testing.assert_array_equal(png[..., 2], scene)


def test_tiles_of_the_current_version_may_be_cached(server, scenes):
    url = scenes[SINGLE]["layers"][1]["tiles"]["url"].format(z=0, x=0, y=0)
    assert get(server, url).headers["Cache-Control"].startswith("public")
    assert get(server, url.replace("?v=", "?v=old")).headers["Cache-Control"] == "no-cache"


def pixel_of(transform, x, y):
    col, row = ~rasterio.Affine(*transform) @ (x, y)
    return int(math.floor(row)), int(math.floor(col))


@pytest.mark.parametrize("scene_id", [SINGLE, "florida_neon_10cm_nodata255"])
def test_point_values_equal_the_zarr_store(outputs, server, scenes, scene_id):
    scene = scenes[scene_id]
    folder = folder_of(outputs, scene_id)
    store = zarr.open_group(str(folder / "saliency.zarr"), mode="r")
    grids, statistics = store.attrs["grids"], store.attrs["scene_statistics"]
    output = next(g for g in grids.values() if "combined" in g["arrays"])
    working = next(g for g in grids.values() if "valid" in g["arrays"])
    combined, valid = zarr_values(folder, "combined")[0], zarr_values(folder, "valid")[0]
    lovi = cog_values(folder / "lovi.tif")
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = scene["bounds"]
    points = [(x0 + (x1 - x0) * u, y0 + (y1 - y0) * v) for u, v in rng.random((6, 2))]
    if np.isnan(combined).any():  # a nodata pixel: values there are null
        row, col = np.argwhere(np.isnan(combined))[0]
        points.append(rasterio.Affine(*output["transform"]) @ (col + 0.5, row + 0.5))
    to_lonlat = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(scene["crs"]["wkt"]), "EPSG:4326", always_xy=True)
    for x, y in points:
        x, y = float(x), float(y)
        answer = get(server, f"api/scenes/{scene_id}/point?x={x!r}&y={y!r}").json()
        row, col = pixel_of(output["transform"], x, y)
        assert (answer["row"], answer["col"]) == (row, col)
        expected = None if np.isnan(combined[row, col]) else pytest.approx(float(combined[row, col]), rel=1e-6)  # float32
        assert answer["values"]["combined"] == expected
        assert answer["values"]["valid"] == bool(valid[pixel_of(working["transform"], x, y)])
        assert answer["values"]["lovi"] == lovi[:, row, col].tolist()  # LOVI (COG only) on the combined map's grid
        assert (answer["lon"], answer["lat"]) == pytest.approx(to_lonlat.transform(x, y), abs=1e-9)
        for k, scale in enumerate(answer["scales"]):
            grid = grids[scale["name"]]
            r, c = pixel_of(grid["transform"], x, y)
            raw = float(store[scale["name"]][r, c])
            assert (scale["row"], scale["col"], scale["stride"]) == (r, c, store.attrs["strides"][k])
            if math.isnan(raw):
                assert scale["raw"] is None and scale["normalised"] is None
            else:
                assert scale["raw"] == pytest.approx(raw, abs=0)
                expected = normal_cdf(torch.tensor([[[raw]]]), mean=statistics["mean"][k], std=statistics["std"][k]).item()
                assert scale["normalised"] == pytest.approx(expected, abs=1e-6)
    if np.isnan(combined).any():
        assert answer["values"]["combined"] is None and answer["values"]["valid"] is False
        assert answer["values"]["lovi"][3] == 0


def test_fast_cam_is_a_layer_and_a_value(outputs):
    store = zarr.open_group(str(outputs.fast_cam / "saliency.zarr"), mode="r")
    statistics, grids = store.attrs["scene_statistics"], store.attrs["grids"]
    with serving([outputs.fast_cam]) as server:
        scene = get(server, f"api/scenes/{FAST_CAM_SCENE}").json()
        layer = next(layer for layer in scene["layers"] if layer["id"] == "fast_cam")
        assert layer["origin"] == "cog" and layer["title"] == "Fast-CAM (buildings)"
        values = npy(get(server, f"api/scenes/{FAST_CAM_SCENE}/tiles/fast_cam/0/0/0.npy"))[0]
        expected = cog_values(outputs.fast_cam / "fast_cam.tif")[0]
        np.testing.assert_array_equal(values[:expected.shape[0], :expected.shape[1]], expected)
        x0, y0, x1, y1 = scene["bounds"]
        x, y = x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0)
        point = get(server, f"api/scenes/{FAST_CAM_SCENE}/point?x={x!r}&y={y!r}").json()
    fast_cam = zarr_values(outputs.fast_cam, "fast_cam")[0]
    row, col = pixel_of(next(g for g in grids.values() if "fast_cam" in g["arrays"])["transform"], x, y)
    assert point["values"]["fast_cam"] == pytest.approx(float(fast_cam[row, col]), rel=1e-6)  # decoded in float32
    r, c = pixel_of(grids["cam"]["transform"], x, y)
    cam = float(store["cam"][r, c])
    assert point["values"]["cam"] == pytest.approx(cam, abs=0)
    k = len(store.attrs["strides"])  # the CAM's statistics follow the scales'
    expected = normal_cdf(torch.tensor([[[cam]]]), mean=statistics["mean"][k], std=statistics["std"][k]).item()
    assert point["values"]["cam_normalised"] == pytest.approx(expected, abs=1e-6)


def test_legends_show_the_colormaps_and_how_lovi_colours(server):
    bar = np.asarray(Image.open(io.BytesIO(get(server, "api/legends/cividis.png?width=256&height=4").body)).convert("RGB"))
    assert bar.shape == (4, 256, 3)
    np.testing.assert_array_equal(bar[0], colormap("cividis"))
    legend = np.asarray(Image.open(io.BytesIO(get(server, "api/legends/lovi.png?scales=5&width=201&height=50").body)).convert("RGB"))
    assert legend.shape[:2] == (50 + 14, 201)
    for k in range(5):  # where only scale k responds, LOVI gives the legend's top colour at scale k's position
        one_hot = torch.zeros(1, 5, 1, 1)
        one_hot[0, k] = 1.0
        expected = np.rint(lovi(one_hot)[0, :, 0, 0].numpy() * 255)
        np.testing.assert_allclose(legend[0, round(200 * k / 4)], expected, atol=1)
    equal = np.rint(lovi(torch.full((1, 5, 1, 1), 0.7))[0, :, 0, 0].numpy() * 255)  # all scales alike: grey
    np.testing.assert_allclose(legend[49, 100] * 0.7, equal, atol=2)
    np.testing.assert_array_equal(legend[-1, :, 0], legend[-1, :, 1])  # the value strip: black to white
    assert legend[-1, 0, 0] == 0 and legend[-1, -1, 0] == 255


def test_blocks_and_quicklook(outputs, server, scenes):
    attrs = zarr.open_group(str(outputs.single / "saliency.zarr"), mode="r").attrs
    height, width, block = attrs["working_grid"]["height"], attrs["working_grid"]["width"], attrs["block"]
    blocks = get(server, f"api/scenes/{SINGLE}/blocks").json()
    assert len(blocks["features"]) == scenes[SINGLE]["progress"]["blocks"] == math.ceil(height / block) * math.ceil(width / block)
    assert all(f["properties"]["pass1"] and f["properties"]["pass2"] for f in blocks["features"])
    x0, y0, x1, y1 = scenes[SINGLE]["bounds"]
    ring = np.array(blocks["features"][0]["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(x0) and ring[:, 1].max() == pytest.approx(y1)
    assert ring[:, 0].max() - ring[:, 0].min() == pytest.approx(block * attrs["grids"]["working"]["transform"][0])
    quicklook = get(server, scenes[SINGLE]["quicklook"])
    assert quicklook.headers["Content-Type"] == "image/jpeg"
    assert quicklook.body == (outputs.single / "quicklook.jpg").read_bytes()


@pytest.mark.parametrize("path, reason", [
    ("api/scenes/nope", "no scene 'nope'"),
    (f"api/scenes/{SINGLE}/tiles/nope/0/0/0.png", "no layer 'nope'"),
    (f"api/scenes/{SINGLE}/tiles/combined/1/4/0.png", "outside the layer"),
    (f"api/scenes/{SINGLE}/tiles/combined/7/0/0.png", "no tile level 7"),
    (f"api/scenes/{SINGLE}/point?x=0&y=0", "outside the scene"),
    ("api/scenes/truncated/tiles/combined/0/0/0.png", "has no output"),
    ("api/scenes/truncated/point?x=0&y=0", "has no output"),
    ("api/nothing", "no such page"),
    ("static/nothing.js", ""),
])
def test_what_is_not_there_is_a_404_with_a_json_reason(server, path, reason, caplog):
    with caplog.at_level(logging.WARNING):
        response = get(server, path)
    assert response.status == 404
    if path.startswith("api/"):
        assert response.headers["Content-Type"] == "application/json"
        assert reason in response.json()["error"] and "Traceback" not in response.body.decode()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path, reason", [
    (f"api/scenes/{SINGLE}/point?x=abc&y=1", "x must be a number"),
    (f"api/scenes/{SINGLE}/point?y=1", "x is required"),
    (f"api/scenes/{SINGLE}/tiles/combined/0/0/0.png?colormap=jet", "unknown colormap"),
    (f"api/scenes/{SINGLE}/tiles/combined/0/0/0.png?min=nan", "must be finite"),
    (f"api/scenes/{SINGLE}/tiles/scale_1/0/0/0.png?values=log", "values must be"),
    ("api/legends/lovi.png?width=99999", "between 1 and 2048"),
])
def test_bad_parameters_are_a_400_with_a_json_reason(server, path, reason):
    response = get(server, path)
    assert response.status == 400
    assert reason in response.json()["error"]


def test_the_page_and_its_scripts_come_from_the_server(server):
    page = get(server, "")
    assert page.status == 200 and b"/static/vendor/ol.js" in page.body
    for script in ("static/vendor/ol.js", "static/vendor/proj4.js", "static/viewer.js", "static/vendor/ol.css"):
        assert get(server, script).status == 200
    info = get(server, "api/info").json()
    assert info["archive"] is True and "magma" in info["colormaps"]


def test_paths_are_checked(outputs, tmp_path):
    (tmp_path / "empty").mkdir()
    for path, message in [(tmp_path / "empty", "no geosal output here"), (tmp_path / "missing", "no such file or folder")]:
        with pytest.raises(ViewerError, match=message) as raised:
            Catalog([path])
        assert "\n" not in str(raised.value)
    assert [e.id for e in Catalog([outputs.archive / "catalog.json"]).entries()] == [*ARCHIVE_SCENES, "truncated"]
    twice = Catalog([outputs.single, outputs.single]).entries()
    assert [e.id for e in twice] == [SINGLE, f"{SINGLE}-2"]  # ids stay unique
