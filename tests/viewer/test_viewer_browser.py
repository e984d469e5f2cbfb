"""The page in a real browser (headless Chromium via Playwright): tiles drawn where the values are, layers,
opacity, swipe, the point panel against the API, the archive list, and no request leaving 127.0.0.1."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from geosal.raster.colormaps import apply_colormap
from geosal.viewer import serving
from tests.viewer.conftest import ARCHIVE_SCENES, SINGLE, http_get

VIEWPORT = {"width": 1280, "height": 800}


class Page:
    """A browser page on the viewer that records every request and script error."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport=VIEWPORT)
        self.url = url
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self, fragment: str = "") -> None:
        self.page.goto(self.url + fragment)
        self.wait_ready()

    def wait_ready(self) -> None:
        self.page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30_000)

    def rendered(self) -> None:
        """Wait until the map has drawn everything it asked for."""
        self.page.evaluate("() => new Promise((resolve) => { app.map.once('rendercomplete', resolve); app.map.render(); })")

    def map_pixels(self) -> np.ndarray:
        self.rendered()
        return np.asarray(Image.open(io.BytesIO(self.page.locator("#map").screenshot())).convert("RGB")).astype(int)

    def save(self, folder, name: str) -> None:
        self.page.screenshot(path=str(folder / f"{name}.png"))

    def offsite(self) -> list[str]:
        """Requests to anywhere but this server (data: and blob: URLs stay in the page)."""
        origin = urlsplit(self.url).netloc
        return [url for url in self.requests if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != origin]

    def close(self) -> None:
        assert not self.errors, self.errors
        assert not self.offsite(), self.offsite()
        self.page.close()


@pytest.fixture(scope="module")
def scene_server(outputs):
    with serving([outputs.single]) as server:
        yield server


@pytest.fixture
def scene_page(browser, scene_server):
    page = Page(browser, scene_server.url)
    page.open()
    yield page
    page.close()


def not_blank(pixels: np.ndarray) -> bool:
    return pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200


def test_a_scene_page_draws_its_tiles_without_leaving_the_machine(scene_page, screenshots):
    page = scene_page.page
    assert page.locator("#title").text_content() == SINGLE
    assert page.locator("#status").text_content() == "complete"
    pixels = scene_page.map_pixels()
    assert not_blank(pixels)
    assert any("/tiles/combined/" in url for url in scene_page.requests)
    assert any("/tiles/scene/" in url for url in scene_page.requests)
    scene_page.save(screenshots, "viewer_scene")


def test_screen_pixels_show_the_stored_values_where_they_are(scene_page, scene_server):
    """Pixel-exact: zoomed in, the colour at the centre of each stored pixel is that pixel's value."""
    page = scene_page.page
    page.locator("#show-scene").uncheck()
    page.locator("#opacity").fill("100")
    page.locator("#colormap").select_option("gray")
    scene = http_get(scene_server.url + f"api/scenes/{SINGLE}").json()
    combined = next(layer for layer in scene["layers"] if layer["id"] == "combined")
    a, _, c, _, e, f = combined["grid"]["transform"]
    page.evaluate("(r) => { const v = app.map.getView(); v.setResolution(r); }", a / 6)  # a stored pixel: 6 x ~7.4 px
    pixels = scene_page.map_pixels()
    rows, cols = combined["grid"]["shape"]
    rng = np.random.default_rng(1)
    checked = 0
    for row, col in zip(rng.integers(rows // 2 - 40, rows // 2 + 40, 12), rng.integers(cols // 2 - 60, cols // 2 + 60, 12)):
        x, y = float(c + (col + 0.5) * a), float(f + (row + 0.5) * e)
        px, py = page.evaluate("([x, y]) => app.map.getPixelFromCoordinate([x, y])", [x, y])
        if not (0 <= px < pixels.shape[1] and 0 <= py < pixels.shape[0]):
            continue
        value = http_get(scene_server.url + f"api/scenes/{SINGLE}/point?x={x!r}&y={y!r}").json()["values"]["combined"]
        expected = apply_colormap(np.array([[value]], dtype=np.float32), "gray")[0, 0, :3]
        np.testing.assert_allclose(pixels[int(py), int(px)], expected, atol=2, err_msg=f"pixel {row}, {col}")
        checked += 1
    assert checked >= 8


def test_layers_opacity_and_swipe(scene_page, screenshots):
    page = scene_page.page
    page.locator("#opacity").fill("100")
    opaque = scene_page.map_pixels()
    page.locator("#opacity").fill("0")
    scene_only = scene_page.map_pixels()
    page.locator("#opacity").fill("50")
    half = scene_page.map_pixels()
    assert np.abs(opaque - scene_only).mean() > 20
    blend = (opaque + scene_only) / 2
    assert np.abs(half - blend).mean() < 2.5  # the layer drawn at half opacity over the scene

    page.locator("#opacity").fill("100")
    page.locator("#swipe-toggle").check()
    page.locator("#swipe").fill("50")
    swiped = scene_page.map_pixels()
    middle = swiped.shape[1] // 2
    left, right = slice(0, middle - 8), slice(middle + 8, None)
    assert np.abs(swiped[:, left] - scene_only[:, left]).mean() < 1.5  # the scene on the left of the divider
    assert np.abs(swiped[:, right] - opaque[:, right]).mean() < 1.5  # the layer on the right
    assert page.locator("#swipe-bar").is_visible()
    scene_page.save(screenshots, "viewer_swipe")
    page.locator("#swipe-toggle").uncheck()

    page.locator("#overlay-list label[data-layer=lovi] input").check()
    lovi = scene_page.map_pixels()
    assert np.abs(lovi - opaque).mean() > 10
    assert any("/tiles/lovi/" in url for url in scene_page.requests)
    assert page.locator("#legend img.lovi").count() == 1
    assert page.locator("#legend").get_attribute("data-layer") == "lovi"
    assert page.locator(".value-control").first.is_hidden()  # no colormap for an RGBA layer

    page.locator("#overlay-list label[data-layer=scale_3] input").check()
    assert not_blank(scene_page.map_pixels())
    assert any("/tiles/scale_3/" in url for url in scene_page.requests)
    page.locator("#values").select_option("raw")
    scene_page.rendered()
    assert any("/tiles/scale_3/" in url and "values=raw" in url for url in scene_page.requests)
    low = float(page.locator("#range-min").input_value())
    assert low != 0.0  # the raw range comes from the scene's statistics


def test_the_point_panel_shows_the_api_values(scene_page, scene_server, screenshots):
    page = scene_page.page
    box = page.locator("#map").bounding_box()
    for fx, fy in [(0.5, 0.5), (0.3, 0.7), (0.62, 0.25)]:
        page.evaluate("() => { document.getElementById('point-panel').dataset.loaded = 'false'; }")
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_function("document.getElementById('point-panel').dataset.loaded === 'true'", timeout=10_000)
        x = float(page.locator("#point-x").get_attribute("data-value"))
        y = float(page.locator("#point-y").get_attribute("data-value"))
        api = http_get(scene_server.url + f"api/scenes/{SINGLE}/point?x={x!r}&y={y!r}").json()
        combined = page.locator("#point-combined")
        assert float(combined.get_attribute("data-value")) == api["values"]["combined"]
        assert combined.text_content() == f"{api['values']['combined']:.4f}"
        assert page.locator("#point-row").text_content() == str(api["row"])
        assert page.locator("#point-col").text_content() == str(api["col"])
        assert page.locator("#point-lon").text_content() == f"{api['lon']:.6f}"
        assert page.locator("#point-lat").text_content() == f"{api['lat']:.6f}"
        bars = page.locator(".point-scale")
        assert bars.count() == len(api["scales"]) == 5
        for k, scale in enumerate(api["scales"]):
            bar = bars.nth(k)
            assert float(bar.get_attribute("data-raw")) == scale["raw"]
            assert float(bar.get_attribute("data-normalised")) == scale["normalised"]
            assert bar.locator("text.normalised").text_content() == f"{scale['normalised']:.2f}"
    scene_page.save(screenshots, "viewer_point")


def test_the_archive_page_lists_the_scenes_and_opens_each_in_its_own_crs(browser, outputs, screenshots):
    with serving([outputs.archive]) as server:
        page = Page(browser, server.url)
        page.open()
        cards = page.page.locator("#scene-list li")
        assert cards.count() == 4
        assert [cards.nth(i).get_attribute("data-id") for i in range(4)] == [*ARCHIVE_SCENES, "truncated"]
        failed = page.page.locator("#scene-list li[data-id=truncated]")
        assert failed.locator(".badge").text_content() == "failed"
        assert "truncated or corrupt" in failed.locator(".error").text_content()
        page.page.wait_for_function("[...document.querySelectorAll('#scene-list img')].every((i) => i.complete && i.naturalWidth > 0)")
        assert page.page.locator("#scene-list img").count() == 3
        assert page.page.evaluate("() => app.footprintLayer.getSource().getFeatures().length") == 3
        page.save(screenshots, "viewer_archive")

        page.page.locator("#scene-list li[data-id=netherlands_25cm_tiled]").click()
        page.page.wait_for_url("**/#/scene/netherlands_25cm_tiled")
        page.wait_ready()
        assert page.page.evaluate("() => app.projection.getCode()") == "EPSG:28992"
        assert not_blank(page.map_pixels())
        box = page.page.locator("#map").bounding_box()
        page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        assert "EPSG:28992" in page.page.locator("#cursor").text_content()
        page.save(screenshots, "viewer_archive_scene")

        page.page.go_back()
        page.wait_ready()
        page.rendered()
        x, y = page.page.evaluate("""() => {
            const f = app.footprintLayer.getSource().getFeatureById('colorado_hro_15cm_small');
            return app.map.getPixelFromCoordinate(ol.extent.getCenter(f.getGeometry().getExtent()));
        }""")
        page.page.mouse.click(box["x"] + x, box["y"] + y)  # the footprint (a dot at this zoom) opens its scene
        page.page.wait_for_url("**/#/scene/colorado_hro_15cm_small")
        page.wait_ready()
        assert page.page.locator("#title").text_content() == "colorado_hro_15cm_small"
        assert page.page.evaluate("() => app.projection.getCode()") == "EPSG:26913"
        page.close()
