"""A run in progress: served from its partial Zarr store, blocks appearing as pass 1 finishes them, the page
refreshing on a timer, and the same scene served from its COGs once the run completes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
import zarr

from geosal.config import load_config
from geosal.pipeline import InProcessExecutor, execute_scene, prepare_scene, run_block, runner_key
from geosal.viewer import serving
from tests.paths import SCENES
from tests.viewer.conftest import http_get

SCENE = SCENES / "manila_oam_10cm.tif"  # 504 x 504 working pixels: 4 x 4 blocks of one 128 px tile
NAME = "manila_oam_10cm"
DASHBOARD = "http://127.0.0.1:8787/status"


class Run:
    """A run of Manila whose pass-1 blocks the tests finish one call at a time."""

    def __init__(self, out):
        self.out = out
        self.config = load_config(overrides={"tiling": {"tile": 128, "halo": 32, "block_tiles": 1, "batch_size": 1},
                                             "compute": {"scheduler": "in-process"}})
        self.prepared = prepare_scene(SCENE, out, self.config)
        self.done: list[int] = []

    @property
    def store(self):
        return self.prepared.partial / "saliency.zarr"

    def blocks(self, indices) -> None:
        """Pass 1 on some blocks, as a running (or interrupted) run leaves them."""
        job = self.prepared.job
        for _ in InProcessExecutor().map(run_block, job, list(indices), stage="pass1", model=runner_key(job)):
            pass
        self.done += list(indices)

    def hide_output_for_refreshes(self, page, requests: list[str], refreshes: int) -> None:
        """Move the partial folder away until the page has asked for the scene ``refreshes`` times, then put it back."""
        hidden = self.prepared.partial.with_name("hidden")
        asked = lambda: sum(url.endswith(f"/api/scenes/{NAME}") for url in requests)  # noqa: E731
        before = asked()
        self.prepared.partial.rename(hidden)
        try:
            for _ in range(200):
                if asked() >= before + refreshes:
                    break
                page.wait_for_timeout(100)
            assert asked() >= before + refreshes
        finally:
            hidden.rename(self.prepared.partial)

    def complete(self) -> None:
        if not (self.out / NAME).exists():
            execute_scene(prepare_scene(SCENE, self.out, self.config, resume=True), progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    running = Run(tmp_path_factory.mktemp("running"))
    running.blocks([0, 5])
    return running


@pytest.fixture(scope="module")
def server(run):
    with serving([run.out / NAME], refresh_seconds=0.3, dashboard=DASHBOARD) as running:  # OUT/NAME: only its partial folder is there
        yield running


def scene(server):
    return http_get(server.url + f"api/scenes/{NAME}").json()


def tile(server, path) -> np.ndarray:
    response = http_get(server.url + path)
    assert response.status == 200, response.body
    return np.load(io.BytesIO(response.body))


def test_a_run_in_progress_is_served_from_its_partial_store(run, server):
    described = scene(server)
    assert described["status"] == "running" and described["dashboard"] == DASHBOARD
    assert described["progress"] == {"blocks": 16, "pass1_done": 2, "pass2_done": 0}
    assert {layer["origin"] for layer in described["layers"]} == {"zarr"}
    stats = zarr.open_array(str(run.store), path="pass1_stats", mode="r")[:][[0, 5]].sum(axis=0)  # [scale, stat]
    mean = stats[:, 1] / stats[:, 0]
    std = np.sqrt(stats[:, 2] / stats[:, 0] - mean**2)
    assert described["statistics"]["provisional"] is True
    np.testing.assert_allclose(described["statistics"]["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(described["statistics"]["std"], std, rtol=1e-9)

    raw = tile(server, f"api/scenes/{NAME}/tiles/scale_1/0/0/0.npy?values=raw")[0]  # scale 1: 252 px, 64 px per block
    written = np.zeros((256, 256), dtype=bool)
    for block in (0, 5):
        row, col = divmod(block, 4)
        written[row * 64:(row + 1) * 64, col * 64:(col + 1) * 64] = True
    np.testing.assert_array_equal(np.isfinite(raw), written)  # exactly the blocks pass 1 finished
    combined = tile(server, f"api/scenes/{NAME}/tiles/combined/0/0/0.npy")[0]
    assert np.isnan(combined).all()  # pass 2 has not run
    assert "lovi" not in [layer["id"] for layer in described["layers"]]  # LOVI is written as a COG only, at the end

    blocks = http_get(server.url + f"api/scenes/{NAME}/blocks").json()["features"]
    assert [f["properties"]["index"] for f in blocks if f["properties"]["pass1"]] == [0, 5]
    x0, y0, x1, y1 = blocks[5]["geometry"]["coordinates"][0][0] + blocks[5]["geometry"]["coordinates"][0][2]
    point = http_get(server.url + f"api/scenes/{NAME}/point?x={(x0 + x1) / 2}&y={(y0 + y1) / 2}").json()
    assert point["values"]["combined"] is None and point["statistics"]["provisional"] is True
    assert all(s["raw"] is not None and 0 <= s["normalised"] <= 1 for s in point["scales"])

    version = described["version"]
    run.blocks([3])
    described = scene(server)
    assert described["version"] != version and described["progress"]["pass1_done"] == 3


def test_the_page_follows_the_run(browser, run, server, screenshots):
    page = browser.new_page(viewport={"width": 1200, "height": 760})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url)
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30_000)
    assert page.locator("#status").text_content() == "in progress"
    assert page.locator("#overlay-list label[data-layer=lovi]").count() == 0  # no LOVI before the COGs
    assert page.locator("#dashboard").is_visible() and page.locator("#dashboard").get_attribute("href") == DASHBOARD
    assert "pass 1: 3 / 16 blocks" in page.locator("#progress").text_content()
    assert page.evaluate("() => app.blocksLayer.getSource().getFeatures().filter((f) => f.get('pass1')).length") == 3
    page.locator("#overlay-list label[data-layer=scale_1] input").check()
    page.screenshot(path=str(screenshots / "viewer_running.png"))

    run.blocks([6])  # the page sees it on its next refresh, without a reload
    page.wait_for_function("document.getElementById('progress').textContent.includes('pass 1: 4 / 16 blocks')", timeout=15_000)
    page.wait_for_function("app.blocksLayer.getSource().getFeatures().filter((f) => f.get('pass1')).length === 4",
                           timeout=15_000)
    tiles_before = sum("/tiles/scale_1/" in url for url in requests)
    run.hide_output_for_refreshes(page, requests, refreshes=3)  # as while a run renames its folder: the page keeps following
    assert page.locator("#status").text_content() == "in progress"
    run.complete()
    page.wait_for_function("document.getElementById('status').textContent === 'complete'", timeout=20_000)
    page.wait_for_function("document.body.dataset.ready === 'true'")
    page.wait_for_selector("#overlay-list label[data-layer=lovi]", timeout=10_000)  # LOVI came with the COGs
    assert sum("/tiles/scale_1/" in url for url in requests) > tiles_before  # the layer reloaded with the new data
    assert page.locator("#progress").text_content() == ""
    page.close()


def test_the_finished_run_is_served_from_its_cogs(run, server):
    run.complete()
    described = scene(server)
    assert described["status"] == "complete" and described["id"] == NAME
    origins = {layer["id"]: layer["origin"] for layer in described["layers"]}
    assert origins["combined"] == origins["lovi"] == "cog" and origins["scale_1"] == "zarr"
    assert described["statistics"]["provisional"] is False
    with rasterio.open(run.out / NAME / "combined.tif") as cog:
        combined = cog.read(1, masked=True).astype(np.float32).filled(np.nan) * np.float32(cog.scales[0])
    served = tile(server, f"api/scenes/{NAME}/tiles/combined/0/0/0.npy")[0]
    np.testing.assert_array_equal(served[:combined.shape[0], :combined.shape[1]], combined)
