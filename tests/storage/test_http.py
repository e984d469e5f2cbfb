"""Scenes over HTTP: range requests through GDAL's ``/vsicurl/``, the same outputs as the local file, only the
bytes a resampled read needs, transient errors retried and permanent ones one line naming the URL."""

from __future__ import annotations

import json

import tifffile

from geosal.cli import main
from tests.reliability.loopback import assert_identical, error_lines
from tests.storage.conftest import model_options

IN_PROCESS = ["--scheduler", "in-process"]
RESAMPLED = ["--resample", "model"]
"""5 cm pixels to the model's 0.406 m (8x: beyond what ``input.resample: auto`` resamples)."""


def test_http_scene_gives_the_local_outputs_and_reads_only_the_overviews(http_server, cog_with_overviews, tiny_model,
                                                                          tmp_path, capsys):
    url = http_server.serve("manila_cog.tif", cog_with_overviews)
    options = [*model_options(tiny_model), *RESAMPLED, *IN_PROCESS]
    assert main(["run", str(cog_with_overviews), str(tmp_path / "local"), *options]) == 0
    assert main(["run", url, str(tmp_path / "http"), *options]) == 0
    ours, theirs = tmp_path / "http" / "manila_cog", tmp_path / "local" / "manila_cog"
    assert_identical(ours, theirs)
    item = json.loads((ours / "item.json").read_text())
    assert [link["href"] for link in item["links"] if link["rel"] == "derived_from"] == [url]

    size = cog_with_overviews.stat().st_size
    fetched = http_server.sent("manila_cog.tif")
    ranged = [r for method, r in http_server.requests("manila_cog.tif") if method == "GET"]
    assert ranged and all(r.startswith("bytes=") for r in ranged)  # never the whole file in one GET
    # 5 cm pixels resampled to 0.406 m: the blocks come from the 8x overview, the scaling sample (4 M pixels at most)
    # from the 2x one (a quarter of the full-resolution pixels); of the full-resolution tiles, only a few that GDAL's
    # read-ahead meets beside the overviews are fetched
    assert fetched < 0.3 * size, (fetched, size)
    with tifffile.TiffFile(cog_with_overviews) as tiff:
        full = tiff.pages[0]
        tiles = list(zip(full.dataoffsets, full.databytecounts))
    spans = [tuple(int(v) for v in r[len("bytes="):].split("-")) for r in ranged]
    fetched_full = sum(n for offset, n in tiles if any(a <= offset and offset + n - 1 <= b for a, b in spans))
    assert fetched_full < 0.02 * sum(n for _, n in tiles), (fetched_full, sum(n for _, n in tiles))
    print(f"fetched {fetched:,} of {size:,} bytes ({fetched / size:.1%}) in {len(ranged)} range requests")
    capsys.readouterr()


def test_transient_errors_are_retried(http_server, cog_with_overviews, tiny_model, tmp_path):
    url = http_server.serve("flaky.tif", cog_with_overviews)
    http_server.fail("flaky.tif", 503, 503)
    assert main(["run", url, str(tmp_path / "out"), *model_options(tiny_model), *RESAMPLED, *IN_PROCESS]) == 0
    assert (tmp_path / "out" / "flaky" / "combined.tif").is_file()
    assert len(http_server.requests("flaky.tif")) >= 3  # two refused, then served


def test_permanent_errors_are_one_line_naming_the_url(http_server, tmp_path, capsys):
    missing = f"{http_server.url}/missing.tif"
    text = tmp_path / "notes.tif"
    text.write_text("not a GeoTIFF at all\n" * 100)
    not_raster = http_server.serve("notes.tif", text)
    http_server.always("denied.tif", 403)
    denied = f"{http_server.url}/denied.tif"
    for url, expected in ((missing, "not found (HTTP 404)"), (denied, "access denied (HTTP 403)"),
                          (not_raster, "not a raster GDAL can read")):
        code = main(["run", url, str(tmp_path / "out"), *IN_PROCESS])
        err = capsys.readouterr().err
        assert code == 2, err
        lines = error_lines(err)
        assert len(lines) == 1 and lines[0].startswith(f"geosal: error: {url}: {expected}"), err
        assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert [method for method, _ in http_server.requests("missing.tif")] == ["HEAD"]  # never retried


def test_remote_stac_catalog_with_relative_hrefs(http_server, cog_with_overviews, tiny_model, tmp_path, capsys):
    """A catalog over HTTP: its links and the items' asset hrefs are resolved against each file's own URL; an asset
    the server does not have fails its scene in one line naming the URL, and the archive goes on."""
    files = tmp_path / "stac"
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "web", "description": "scenes on a web server",
               "links": [{"rel": "item", "href": f"./items/{n}.json", "type": "application/json"} for n in ("manila", "gone")]}
    (files / "items").mkdir(parents=True)
    (files / "catalog.json").write_text(json.dumps(catalog))
    for item_id, href in (("manila", "../../data/manila_cog.tif"), ("gone", "../../data/gone.tif")):
        item = {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "geometry": None, "links": [],
                "properties": {"datetime": "2020-01-01T00:00:00Z"},
                "assets": {"image": {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"]}}}
        (files / "items" / f"{item_id}.json").write_text(json.dumps(item))
    url = http_server.serve("stac/catalog.json", files / "catalog.json")
    for item_id in ("manila", "gone"):
        http_server.serve(f"stac/items/{item_id}.json", files / "items" / f"{item_id}.json")
    http_server.serve("data/manila_cog.tif", cog_with_overviews)

    out = tmp_path / "out"
    assert main(["submit", url, str(out), *model_options(tiny_model), *RESAMPLED, *IN_PROCESS]) == 1
    capsys.readouterr()
    scenes = {s["name"]: s for s in json.loads((out / "summary.json").read_text())["scenes"]}
    assert scenes["manila"]["status"] == "ok" and scenes["manila"]["source"] == f"{http_server.url}/data/manila_cog.tif"
    assert scenes["gone"]["status"] == "failed"
    assert scenes["gone"]["error"] == f"{http_server.url}/data/gone.tif: not found (HTTP 404)"
    assert (out / "manila" / "combined.tif").is_file() and not (out / "gone").exists()
