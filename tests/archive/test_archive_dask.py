"""``geosal submit`` on a real Dask LocalCluster: 2 worker processes, 1 thread each, 2 scenes in flight."""

from __future__ import annotations

import pystac
import pytest

from geosal.cli import main
from tests.archive.conftest import combined, link_scene, read_summary

pytestmark = pytest.mark.slow


def test_two_scenes_on_a_local_cluster(tmp_path, fast_options, capsys):
    archive = tmp_path / "archive"
    names = ["colorado_hro_15cm_small", "florida_neon_10cm_nodata255"]
    for name in names:
        link_scene(archive, f"{name}.tif")
    out = tmp_path / "out"
    code = main(["submit", str(archive), str(out), *fast_options, "--workers", "2", "--threads-per-worker", "1",
                 "--max-scenes-in-flight", "2", "--memory-limit", "2GiB"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = read_summary(out)
    assert [(r["name"], r["status"]) for r in summary["scenes"]] == [(n, "ok") for n in names]
    assert all(r["tiles_computed"] == r["tiles"] > 0 for r in summary["scenes"])
    items = list(pystac.Catalog.from_file(str(out / "catalog.json")).get_items(recursive=True))
    assert sorted(item.id for item in items) == names
    assert all(combined(out / name).size for name in names)
