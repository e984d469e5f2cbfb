"""The viewer's HTTP API on real outputs: scenes, tiles against the COGs and the Zarr store, point values, 404s."""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import pyproj
import pytest
import rasterio
import torch
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
    store = zarr.open_group(str(outputs.single / "saliency.zarr"), mode="r")
    grids = store.attrs["grids"]
    for layer in scene["layers"]:
        array = {"scene": "preview"}.get(layer["id"], layer["id"])
        record = next(r for r in grids.values() if array in r["arrays"])
        assert layer["grid"]["shape"] == record["shape"]
        assert layer["grid"]["transform"] == pytest.approx(record["transform"], rel=1e-12)
        a, e = record["transform"][0], record["transform"][4]
        tiles = layer["tiles"]
        assert tiles["origin"] == pytest.approx([record["transform"][2], record["transform"][5]])
        assert tiles["resolutions"][-1] == pytest.approx(a)  # the finest level is the grid's own pixels
        assert tiles["tile_size"] == pytest.approx([256, 256 * abs(e) / a])  # non-square degrees stay pixel-aligned
        assert 256 * 2 ** (tiles["levels"] - 1) >= max(record["shape"])  # the coarsest level is one tile
        assert tiles["levels"] == 1 or max(record["shape"]) > 256 * 2 ** (tiles["levels"] - 2)  # and no coarser
    origins = {layer["id"]: layer["origin"] for layer in scene["layers"]}
    assert origins == {"scene": "zarr", "combined": "cog", "lovi": "cog", **{f"scale_{k}": "zarr" for k in range(1, 6)}}


@pytest.mark.parametrize("scene_id", [SINGLE, "netherlands_25cm_tiled"])
def test_finest_tiles_hold_the_stored_values(outputs, server, scenes, scene_id):
    scene = scenes[scene_id]
    store = zarr.open_group(str(folder_of(outputs, scene_id) / "saliency.zarr"), mode="r")
    statistics = store.attrs["scene_statistics"]
    for layer in scene["layers"]:
        finest = layer["tiles"]["levels"] - 1
        array = {"scene": "preview"}.get(layer["id"], layer["id"])
        stored = np.asarray(store[array][:])
        stored = stored.reshape(-1, *stored.shape[-2:])
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


def test_the_combined_cog_tile_equals_the_zarr_map_and_coarser_tiles_come_from_the_overviews(outputs, server):
    combined = zarr.open_array(str(outputs.single / "saliency.zarr"), path="combined", mode="r")[:]
    tile = npy(get(server, f"api/scenes/{SINGLE}/tiles/combined/2/1/1.npy"))[0]
    np.testing.assert_array_equal(tile[:256, :256], combined[256:512, 256:512])
    coarse = npy(get(server, f"api/scenes/{SINGLE}/tiles/combined/1/0/0.npy"))[0]  # factor 2: one overview level
    with rasterio.open(outputs.single / "combined.tif", OVERVIEW_LEVEL=0) as overview:
        overview_values = set(overview.read(1).ravel().tolist())
    assert np.isfinite(coarse).sum() > 200 * 200
    assert set(coarse[np.isfinite(coarse)].tolist()) <= overview_values  # nearest: only values the overview holds
    scale_1 = zarr.open_array(str(outputs.single / "saliency.zarr"), path="scale_1", mode="r")[:]
    coarse_scale = npy(get(server, f"api/scenes/{SINGLE}/tiles/scale_1/0/0/0.npy?values=raw"))[0]
    np.testing.assert_array_equal(coarse_scale[:240, :195], scale_1[::2, ::2])  # Zarr: every second pixel


def test_png_tiles_are_the_values_through_the_colormap(server, scenes):
    base = f"api/scenes/{SINGLE}/tiles"
    values = npy(get(server, f"{base}/combined/2/3/3.npy"))[0]  # the last tile: partly outside the grid
    png = rgba_png(get(server, f"{base}/combined/2/3/3.png?colormap=viridis&min=0.2&max=0.8"))
    np.testing.assert_array_equal(png, apply_colormap(values, "viridis", 0.2, 0.8))
    assert (png[..., 3][np.isnan(values)] == 0).all() and (png[..., 3][np.isfinite(values)] == 255).all()
    raw = npy(get(server, f"{base}/scale_2/0/0/0.npy?values=raw"))[0]
    png = rgba_png(get(server, f"{base}/scale_2/0/0/0.png?values=raw&colormap=gray&min=2&max=12"))
    np.testing.assert_array_equal(png, apply_colormap(raw, "gray", 2, 12))
    lovi_values = npy(get(server, f"{base}/lovi/2/0/0.npy"))
    np.testing.assert_array_equal(rgba_png(get(server, f"{base}/lovi/2/0/0.png")), np.moveaxis(lovi_values, 0, -1))
    scene = npy(get(server, f"{base}/scene/2/0/0.npy"))[0]  # a single-band 16-bit scene: the model's uint8 input, grey
    png = rgba_png(get(server, f"{base}/scene/2/0/0.png"))
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
    store = zarr.open_group(str(folder_of(outputs, scene_id) / "saliency.zarr"), mode="r")
    grids, statistics = store.attrs["grids"], store.attrs["scene_statistics"]
    full = next(g for g in grids.values() if "combined" in g["arrays"])
    valid = np.asarray(store["valid"][:])
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = scene["bounds"]
    points = [(x0 + (x1 - x0) * u, y0 + (y1 - y0) * v) for u, v in rng.random((6, 2))]
    if not valid.all():  # a nodata pixel: every value there is null
        row, col = np.argwhere(valid == 0)[0]
        points.append(rasterio.Affine(*full["transform"]) @ (col + 0.5, row + 0.5))
    to_lonlat = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(scene["crs"]["wkt"]), "EPSG:4326", always_xy=True)
    for x, y in points:
        answer = get(server, f"api/scenes/{scene_id}/point?x={float(x)!r}&y={float(y)!r}").json()
        row, col = pixel_of(full["transform"], x, y)
        assert (answer["row"], answer["col"]) == (row, col)
        combined = float(store["combined"][row, col])
        assert answer["values"]["combined"] == (None if math.isnan(combined) else pytest.approx(combined, abs=0))
        assert answer["values"]["valid"] == bool(valid[row, col])
        assert answer["values"]["lovi"] == store["lovi"][:, row, col].tolist()
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
    if not valid.all():
        assert answer["values"]["combined"] is None and answer["values"]["valid"] is False


def test_fast_cam_is_a_layer_and_a_value(outputs):
    store = zarr.open_group(str(outputs.fast_cam / "saliency.zarr"), mode="r")
    statistics, grids = store.attrs["scene_statistics"], store.attrs["grids"]
    with serving([outputs.fast_cam]) as server:
        scene = get(server, f"api/scenes/{FAST_CAM_SCENE}").json()
        layer = next(layer for layer in scene["layers"] if layer["id"] == "fast_cam")
        assert layer["origin"] == "cog" and layer["title"] == "Fast-CAM (buildings)"
        values = npy(get(server, f"api/scenes/{FAST_CAM_SCENE}/tiles/fast_cam/0/0/0.npy"))[0]
        stored = store["fast_cam"][:]
        np.testing.assert_array_equal(values[:stored.shape[0], :stored.shape[1]], stored)
        x0, y0, x1, y1 = scene["bounds"]
        x, y = x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0)
        point = get(server, f"api/scenes/{FAST_CAM_SCENE}/point?x={x!r}&y={y!r}").json()
    row, col = pixel_of(next(g for g in grids.values() if "combined" in g["arrays"])["transform"], x, y)
    assert point["values"]["fast_cam"] == pytest.approx(float(stored[row, col]), abs=0)
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
    blocks = get(server, f"api/scenes/{SINGLE}/blocks").json()
    assert len(blocks["features"]) == scenes[SINGLE]["progress"]["blocks"] == 8 * 7  # 958 x 777 px in 128 px blocks
    assert all(f["properties"]["pass1"] and f["properties"]["pass2"] for f in blocks["features"])
    x0, y0, x1, y1 = scenes[SINGLE]["bounds"]
    ring = np.array(blocks["features"][0]["geometry"]["coordinates"][0])
    assert ring[:, 0].min() == pytest.approx(x0) and ring[:, 1].max() == pytest.approx(y1)
    assert get(server, f"api/scenes/{SINGLE}/quicklook.png").body == (outputs.single / "quicklook.png").read_bytes()


@pytest.mark.parametrize("path, reason", [
    ("api/scenes/nope", "no scene 'nope'"),
    (f"api/scenes/{SINGLE}/tiles/nope/0/0/0.png", "no layer 'nope'"),
    (f"api/scenes/{SINGLE}/tiles/combined/2/4/0.png", "outside the layer"),
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
