"""``geosal submit`` on real scenes: an archive of every scene plus two bad files,
resumption (complete and interrupted scenes), STAC input, existing outputs."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio

from geosal.archive import discover_scenes
from geosal.cli import build_parser, main
from geosal.cli.options import config_from_args
from geosal.pipeline import InProcessExecutor, prepare_scene, run_block, runner_key
from geosal.raster import done_blocks
from tests.archive.conftest import BAD_SCENES, GOOD_SCENES, combined, link_scene, read_summary
from tests.paths import SCENES

pytestmark = pytest.mark.slow  # one shared run of every real scene (about a minute on 2 idle cores)

SCENE_FILES = ("combined.tif", "lovi.tif", "combined.qml", "lovi.qml", "quicklook.jpg", "item.json", "config.yaml")


def stem(name: str) -> str:
    return Path(name).stem


def config_for(options: list[str]):
    """The RunConfig ``geosal submit`` builds from ``options``."""
    return config_from_args(build_parser().parse_args(["submit", "ARCHIVE", "OUT", *options]))


def check_catalog(out: Path, names: list[str]) -> None:
    """``catalog.json`` is a self-contained STAC Catalog whose items are ``OUT/<name>/item.json``."""
    data = json.loads((out / "catalog.json").read_text())
    assert data["type"] == "Catalog" and data["id"] and data["description"] and data["stac_version"].startswith("1.")
    assert [link["href"] for link in data["links"] if link["rel"] == "root"] == ["./catalog.json"]
    assert sorted(link["href"] for link in data["links"] if link["rel"] == "item") == sorted(f"./{n}/item.json" for n in names)
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert sorted(item.id for item in items) == sorted(names)
    for item in items:
        assert Path(item.get_self_href()) == (out / item.id / "item.json").absolute()
        raw = json.loads((out / item.id / "item.json").read_text())
        assert raw["type"] == "Feature" and raw["geometry"]["type"] == "Polygon" and len(raw["bbox"]) == 4
        assert {link["rel"]: link["href"] for link in raw["links"] if link["rel"] in ("root", "parent")} == {
            "root": "../catalog.json", "parent": "../catalog.json"}
        assert all(not os.path.isabs(asset["href"]) for asset in raw["assets"].values())
        assert Path(item.assets["combined"].get_absolute_href()).is_file()
        assert item.get_parent().id == catalog.id


def test_archive_of_every_scene(archive_run, archive_dir):
    assert archive_run.exit_code == 1  # two bad files
    summary = archive_run.summary
    records = {record["name"]: record for record in summary["scenes"]}
    assert set(records) == {stem(n) for n in GOOD_SCENES} | set(BAD_SCENES)
    out = archive_run.out

    for name in map(stem, GOOD_SCENES):
        record = records[name]
        assert record["status"] == "ok", record
        assert record["tiles"] == record["tiles_computed"] > 0 and record["blocks"] > 0 and record["blocks_skipped"] == 0
        assert set(record["seconds"]) >= {"plan", "pass1", "pass2", "export", "total"} and record["tiles_per_second"] > 0
        folder = out / name
        assert all((folder / f).is_file() for f in SCENE_FILES) and (folder / "saliency.zarr").is_dir()
        assert record["output_bytes"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        with rasterio.open(folder / "combined.tif") as result, rasterio.open(SCENES / f"{name}.tif") as source:
            assert result.crs == source.crs
            # native resolution, output grid of stride 2: the same corner, at most one working pixel past the far edges
            assert (result.bounds.left, result.bounds.top) == (source.bounds.left, source.bounds.top)
            assert 0 <= result.bounds.right - source.bounds.right <= source.res[0] * (1 + 1e-9)
            assert 0 <= source.bounds.bottom - result.bounds.bottom <= source.res[1] * (1 + 1e-9)
        values = combined(folder)
        finite = values[np.isfinite(values)]
        assert finite.size and finite.min() >= 0 and finite.max() <= 1

    corrupt, no_crs = records["corrupt"], records["not_georeferenced"]
    for record in (corrupt, no_crs):
        assert record["status"] == "failed" and record["stage"] == "plan" and record["tiles_computed"] == 0
        assert "\n" not in record["error"] and record["source"] in record["error"]
        assert not (out / record["name"]).exists()
    assert "corrupt" in corrupt["error"] or "truncated" in corrupt["error"]
    assert re.search(r"CRS|georef|transform", no_crs["error"], re.IGNORECASE)

    totals = summary["totals"]
    assert (totals["scenes"], totals["ok"], totals["failed"], totals["skipped"]) == (len(GOOD_SCENES) + 2, len(GOOD_SCENES), 2, 0)
    assert totals["tiles_computed"] == sum(r["tiles_computed"] for r in records.values())
    assert totals["output_bytes"] == sum(r["output_bytes"] for r in records.values())
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no partial or probe files left"

    check_catalog(out, [stem(n) for n in GOOD_SCENES])

    report = (out / "report.html").read_text()
    for name in map(stem, GOOD_SCENES):
        assert f'src="{name}/quicklook.jpg"' in report
    assert "not_georeferenced" in report and "truncated or corrupt" in report
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", report), "self-contained: no external assets"
    assert "<script" not in report and "<link" not in report


def test_resume_skips_complete_scenes(archive_run, archive_dir, fast_options):
    before = {n: (archive_run.out / stem(n) / "combined.tif").stat().st_mtime_ns for n in GOOD_SCENES}
    code = main(["submit", str(archive_dir), str(archive_run.out), "--resume", *fast_options, "--scheduler", "in-process"])
    assert code == 1  # the bad files still fail
    summary = read_summary(archive_run.out)
    records = {r["name"]: r for r in summary["scenes"]}
    assert all(records[stem(n)]["status"] == "skipped" for n in GOOD_SCENES)
    assert {records[b]["status"] for b in BAD_SCENES} == {"failed"}
    assert summary["totals"]["tiles_computed"] == 0 and summary["totals"]["skipped"] == len(GOOD_SCENES)
    first = {r["name"]: r for r in archive_run.summary["scenes"]}
    assert all((records[stem(n)]["tiles"], records[stem(n)]["blocks"]) == (first[stem(n)]["tiles"], first[stem(n)]["blocks"])
               for n in GOOD_SCENES)
    assert before == {n: (archive_run.out / stem(n) / "combined.tif").stat().st_mtime_ns for n in GOOD_SCENES}
    assert all(records[stem(n)]["seconds"] == {"total": 0.0} for n in GOOD_SCENES)  # not even planned again
    check_catalog(archive_run.out, [stem(n) for n in GOOD_SCENES])


def test_interrupted_scene_resumes_at_block_level(fast_options, tmp_path):
    options = [*fast_options, "--block-tiles", "1", "--batch-size", "1", "--scheduler", "in-process"]  # one tile per block: 6 blocks
    archive = tmp_path / "archive"
    link_scene(archive, "colorado_hro_15cm_small.tif")
    clean_out, out = tmp_path / "clean", tmp_path / "out"
    assert main(["submit", str(archive), str(clean_out), *options]) == 0

    [scene] = discover_scenes(archive)
    prepared = prepare_scene(scene.source, out, config_for(options), name=scene.name)
    plan = prepared.plan
    assert plan.n_blocks == 6
    interrupted = [0, 2, 5]  # pass 1 stopped after three of the six blocks
    job = prepared.job
    for _ in InProcessExecutor().map(run_block, job, interrupted, stage="pass1", model=runner_key(job)):
        pass
    assert np.flatnonzero(done_blocks(job.store)).tolist() == interrupted
    assert not (out / scene.name).exists()

    assert main(["submit", str(archive), str(out), "--resume", *options]) == 0
    [record] = read_summary(out)["scenes"]
    remaining = sum(len(plan.tiles_in_block(i)) for i in (1, 3, 4))
    assert record["status"] == "ok" and record["blocks_skipped"] == 3 and record["tiles_computed"] == remaining < record["tiles"]
    np.testing.assert_allclose(combined(out / scene.name), combined(clean_out / scene.name), rtol=1e-6, atol=1e-7, equal_nan=True)
    assert not (out / f".{scene.name}.partial").exists()


def test_stac_item_collection_matches_folder_input(archive_run, fast_options, tmp_path):
    chosen = ["colorado_hro_15cm_small.tif", "florida_neon_10cm_nodata255.tif"]
    stac = tmp_path / "stac"
    features = []
    for index, name in enumerate(chosen):
        link_scene(stac / "data", name, f"scene{index}.tif")  # file names differ from the item ids
        item = pystac.Item(stem(name), geometry=None, bbox=None, datetime=datetime(2024, 1, 1, tzinfo=timezone.utc), properties={})
        item.add_asset("thumbnail", pystac.Asset(f"data/scene{index}.png", roles=["thumbnail"], media_type="image/png"))
        item.add_asset("image", pystac.Asset(f"data/scene{index}.tif", media_type="image/tiff; application=geotiff", roles=["data"]))
        features.append(item.to_dict(transform_hrefs=False))
    collection = stac / "items.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    out = tmp_path / "out"
    assert main(["submit", str(collection), str(out), *fast_options, "--scheduler", "in-process"]) == 0
    names = [r["name"] for r in read_summary(out)["scenes"]]
    assert names == [stem(n) for n in chosen]
    for name in names:
        np.testing.assert_allclose(combined(out / name), combined(archive_run.out / name), rtol=1e-6, atol=1e-7, equal_nan=True)
    check_catalog(out, names)

    # existing outputs without --resume or --overwrite: a recorded failure per scene, outputs untouched
    stamp = (out / names[0] / "combined.tif").stat().st_mtime_ns
    assert main(["submit", str(collection), str(out), *fast_options, "--scheduler", "in-process"]) == 1
    records = read_summary(out)["scenes"]
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all("already exists" in r["error"] and "--resume" in r["error"] for r in records)
    assert (out / names[0] / "combined.tif").stat().st_mtime_ns == stamp
    check_catalog(out, names)  # the catalog still describes the complete outputs in OUT


def test_bad_model_is_a_bad_invocation(tmp_path, capsys):
    link_scene(tmp_path / "archive", "colorado_hro_15cm_small.tif")
    code = main(["submit", str(tmp_path / "archive"), str(tmp_path / "out"), "--model", str(tmp_path / "missing.pt"),
                 "--scheduler", "in-process"])
    assert code == 2 and "missing.pt" in capsys.readouterr().err
