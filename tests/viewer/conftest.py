"""Real outputs for the viewer tests, made once per session from the scenes in ``../shared/data/scenes``.

- ``single``: ``geosal run`` of the EPSG:4326, 16-bit Las Vegas scene;
- ``archive``: ``geosal submit`` of three scenes in three CRSs (one with
  nodata, one in EPSG:28992) and a truncated file that fails;
- ``fast_cam``: ``geosal run --fast-cam-class`` of the small Colorado scene;

both in-process with small tiles (128 px, halo 32, one tile per block), the
shipped model. The printed output of both commands is kept for the tests of
their last line. A headless Chromium (the system's, driven by Playwright) is
shared by the browser tests, which skip with the reason when it is missing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from geosal.cli import main
from tests.paths import SCENES

FAST = ["--scheduler", "in-process", "--tile", "128", "--halo", "32", "--block-tiles", "1"]
SINGLE = "las_vegas_pan_uint16_epsg4326"
FAST_CAM_SCENE = "colorado_hro_15cm_small"
ARCHIVE_SCENES = ("colorado_hro_15cm_small", "florida_neon_10cm_nodata255", "netherlands_25cm_tiled")
CHROMIUM = Path(os.environ.get("GEOSAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Outputs:
    """Where the session's outputs are and what the commands printed."""

    single: Path
    archive: Path
    fast_cam: Path
    run_stdout: str
    submit_stdout: str
    submit_code: int


def run_quietly(argv: list[str]) -> tuple[int, str]:
    """``geosal ARGV`` in this process; returns its exit status and what it printed on stdout."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return code, printed.getvalue()


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> Outputs:
    root = tmp_path_factory.mktemp("viewer_outputs")
    code, run_stdout = run_quietly(["run", str(SCENES / f"{SINGLE}.tif"), str(root / "single"), *FAST])
    assert code == 0, run_stdout
    archive = root / "archive_in"
    archive.mkdir()
    for name in ARCHIVE_SCENES:
        (archive / f"{name}.tif").symlink_to(SCENES / f"{name}.tif")
    data = (SCENES / "naip_rgbn_5m_nodata0.tif").read_bytes()
    (archive / "truncated.tif").write_bytes(data[: len(data) // 3])
    submit_code, submit_stdout = run_quietly(["submit", str(archive), str(root / "archive"), *FAST])
    colorado = SCENES / f"{FAST_CAM_SCENE}.tif"
    code, printed = run_quietly(["run", str(colorado), str(root / "fast_cam"), *FAST, "--fast-cam-class", "buildings"])
    assert code == 0, printed
    return Outputs(root / "single" / SINGLE, root / "archive", root / "fast_cam" / FAST_CAM_SCENE, run_stdout, submit_stdout,
                   submit_code)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http_get(url: str) -> Response:
    """GET ``url``: status, headers and body, also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return Response(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="session")
def browser():
    """The system's Chromium, headless, without any network of its own."""
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (on Debian: apt-get install chromium; "
                    "or set GEOSAL_CHROMIUM); it is not there")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Folder for the browser tests' screenshots (a test artefact; ``GEOSAL_TEST_ARTIFACTS`` chooses another)."""
    chosen = os.environ.get("GEOSAL_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
