"""Every bad input: one clear line on stderr, exit status 2, no complete-looking output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geosal.cli import main
from tests.paths import SCENES

FAST = ["--scheduler", "in-process", "--tile", "64", "--halo", "32"]


def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(["run", *map(str, args), *FAST])
    err = capsys.readouterr().err.strip().splitlines()
    return code, "\n".join(err)


def assert_clean_failure(code: int, err: str, out, pattern: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("geosal:")]
    assert len(lines) == 1 and lines[0].startswith("geosal: error:"), err
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in err
    assert not any(p.is_dir() and not p.name.startswith(".") for p in out.glob("*")) if out.exists() else True


ORIGIN = from_origin(500000, 4000000, 1, 1)


def write_tif(path, dtype="uint8", count=3, crs="EPSG:32617", transform=ORIGIN, size=64):
    profile = {"driver": "GTiff", "width": size, "height": size, "count": count, "dtype": dtype}
    if crs:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((count, size, size), dtype=dtype))
    return path


def test_missing_file(tmp_path, capsys):
    code, err = run_cli(capsys, tmp_path / "nope.tif", tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "no such file")


def test_not_a_raster(tmp_path, capsys):
    (tmp_path / "notes.tif").write_text("this is not a raster")
    code, err = run_cli(capsys, tmp_path / "notes.tif", tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "not a raster")


def test_no_georeference(tmp_path, capsys):
    path = write_tif(tmp_path / "plain.tif", crs=None)
    code, err = run_cli(capsys, path, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "geotransform")


def test_complex_dtype(tmp_path, capsys):
    path = write_tif(tmp_path / "complex.tif", dtype="complex64", count=1)
    code, err = run_cli(capsys, path, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "complex64")


def test_band_out_of_range(tmp_path, capsys):
    code, err = run_cli(capsys, SCENES / "colorado_hro_15cm_small.tif", tmp_path / "out", "--bands", "1,2,7")
    assert_clean_failure(code, err, tmp_path / "out", "7")


def test_zero_size_raster(tmp_path, capsys):
    vrt = tmp_path / "empty.vrt"
    vrt.write_text('<VRTDataset rasterXSize="0" rasterYSize="0"><VRTRasterBand dataType="Byte" band="1"/></VRTDataset>')
    code, err = run_cli(capsys, vrt, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "not a raster")


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    code, err = run_cli(capsys, SCENES / "colorado_hro_15cm_small.tif", blocker / "out")
    assert_clean_failure(code, err, tmp_path / "nothing", "cannot write")


@pytest.mark.parametrize(
    "content, pattern",
    [("tiling:\n  batch_size: 0\n", "tiling.batch_size"), ("tilling:\n  tile: 64\n", "unknown key 'tilling'"),
     ("saliency: {weights: fancy}\n", "saliency.weights"), ("[1, 2", "not valid YAML")],
)
def test_invalid_config(tmp_path, capsys, content, pattern):
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    code, err = run_cli(capsys, SCENES / "colorado_hro_15cm_small.tif", tmp_path / "out", "--config", config)
    assert_clean_failure(code, err, tmp_path / "out", pattern)


def test_tile_not_multiple_of_stride(tmp_path, capsys):
    code = main(["run", str(SCENES / "colorado_hro_15cm_small.tif"), str(tmp_path / "out"), "--scheduler", "in-process", "--tile", "100"])
    err = capsys.readouterr().err
    assert_clean_failure(code, err, tmp_path / "out", "multiple of the network's total stride 32")


def test_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "broken.pt").write_bytes(b"\x00" * 100)
    code, err = run_cli(capsys, SCENES / "colorado_hro_15cm_small.tif", tmp_path / "out", "--model", tmp_path / "broken.pt",
                        "--architecture", "resnet18")
    assert_clean_failure(code, err, tmp_path / "out", "not a readable PyTorch checkpoint")


def test_existing_output_is_refused_then_overwritten(tmp_path, capsys):
    scene = tmp_path / "tiny.tif"
    shutil.copy(SCENES / "colorado_hro_15cm_small.tif", scene)
    assert main(["run", str(scene), str(tmp_path / "out"), *FAST]) == 0
    capsys.readouterr()
    code, err = run_cli(capsys, scene, tmp_path / "out")
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert main(["run", str(scene), str(tmp_path / "out"), "--overwrite", *FAST]) == 0
    assert main(["run", str(scene), str(tmp_path / "out"), "--resume", *FAST]) == 0
    assert "already complete" in capsys.readouterr().out
