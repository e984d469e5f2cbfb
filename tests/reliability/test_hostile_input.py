"""Hostile and odd input: each is processed correctly or refused in one line, with no traceback, no unbounded
memory and no output that looks complete."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
import zarr
from rasterio.transform import from_origin
from rasterio.windows import Window

from geosal.cli import main
from geosal.raster.scaling import MAX_SAMPLE_PIXELS, sample_blocks
from tests.outputs import read_unit_layer
from tests.paths import SCENES
from tests.reliability.conftest import SCENE, model_options
from tests.reliability.loopback import assert_identical, error_lines, process_env

IN_PROCESS = ["--scheduler", "in-process"]


def assert_refused(code: int, err: str, out: Path, *expected: str) -> str:
    """One ``geosal: error:`` line holding ``expected``, exit status 2, no traceback, no complete-looking output."""
    lines = error_lines(err)
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("geosal: error: "), err
    assert "Traceback" not in err, err
    for text in expected:
        assert text in lines[0], lines[0]
    assert not any(p.is_dir() and not p.name.startswith(".") for p in out.glob("*")) if out.exists() else True
    return lines[0]


@pytest.fixture(scope="module")
def huge_scene(tmp_path_factory) -> Path:
    """A GeoTIFF that declares 10^6 x 10^6 pixels at 10 cm (three bands), sparse: one 1024 px tile of data, 11 MB on
    disk (the tile index); GDAL reads the missing tiles as zeros."""
    path = tmp_path_factory.mktemp("huge") / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=10**6, height=10**6, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 5000000, 0.1, 0.1), tiled=True, blockxsize=1024,
                       blockysize=1024, compress="deflate", sparse_ok=True, bigtiff="yes") as dst:
        dst.write(np.full((3, 1024, 1024), 120, np.uint8), window=Window(0, 0, 1024, 1024))
    return path


def refused_with_peak(scene: Path, out: Path, *options: str) -> tuple[int, str, int]:
    """Run ``geosal run scene out *options`` in a fresh interpreter: (exit status, stderr, the command's own peak
    resident memory in KiB; not its children's: a compiler building the native kernel would count otherwise)."""
    code = ("import atexit, resource, sys\n"
            "atexit.register(lambda: print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
            "from geosal.cli import main\n"
            f"sys.exit(main(['run', {str(scene)!r}, {str(out)!r}, *{list(options)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], env=process_env(), capture_output=True, text=True)
    err = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("peak "))
    peak_kib = int(next(line for line in done.stderr.splitlines() if line.startswith("peak ")).split()[1])
    return done.returncode, err, peak_kib


def test_enormous_declared_size_is_refused_in_bounded_memory(huge_scene, tmp_path):
    out = tmp_path / "out"
    code, err, peak_kib = refused_with_peak(huge_scene, out)
    line = assert_refused(code, err, out, "246,063 x 246,063", "above input.max_pixels = 1e+10", "--max-pixels")
    assert "tiles of 512 px" in line
    assert not out.exists()
    # the same refusal of a 1024 px scene, measured the same way: the interpreter with torch, whatever its size on
    # this machine, is the baseline; a scene 10^6 times larger must not add to it
    small_out = tmp_path / "small"
    code, err, small_peak_kib = refused_with_peak(SCENES / f"{SCENE}.tif", small_out, "--max-pixels", "1")
    assert_refused(code, err, small_out, "above input.max_pixels = 1")
    assert peak_kib - small_peak_kib < 256 * 1024, (peak_kib, small_peak_kib)


def test_huge_internal_blocks_are_refused(tmp_path, capsys):
    """Strips of 100,000 x 4,000 px (1.1 GiB decoded each, 400 bytes on disk): any read would decode a whole strip."""
    path = tmp_path / "strips.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100_000, height=8_000, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(500000, 5000000, 1, 1), blockysize=4_000, compress="deflate", sparse_ok=True):
        pass
    code = main(["run", str(path), str(tmp_path / "out"), *IN_PROCESS])
    assert_refused(code, capsys.readouterr().err, tmp_path / "out", "internal blocks of 100,000 x 4,000 px (1.1 GiB each",
                   "retile")


@pytest.mark.parametrize("option, value, figure", [
    ("--halo", "1048576", "1048576 px halo"),
    ("--batch-size", "1000000", "1000000 per batch"),
    ("--tile", "1048576", "tiles of 1000000 px"),  # the tile reduced to the scene's side
])
def test_absurd_tiling_is_refused_before_the_cluster(huge_scene, tiny_model, tmp_path, capsys, option, value, figure):
    out = tmp_path / "out"
    code = main(["run", str(huge_scene), str(out), *model_options(tiny_model), "--resample", "native", "--max-pixels", "1e13",
                 option, value])  # no --scheduler: a local cluster would start after the plan
    captured = capsys.readouterr()
    line = assert_refused(code, captured.err, out, figure, "GiB per task", "above compute.max_task_memory_gib = 32")
    assert "Dask cluster" not in captured.out
    assert float(line.split("would take about ")[1].split(" GiB")[0].replace(",", "")) > 32


def corrupt_tile(path: Path, row: int, col: int) -> None:
    """Overwrite the compressed bytes of tile (``row``, ``col``) of a tiled GeoTIFF with noise."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        index = row * -(-page.imagewidth // page.tilewidth) + col
        offset, count = page.dataoffsets[index], page.databytecounts[index]
    data = bytearray(path.read_bytes())
    data[offset + 8 : offset + count] = np.random.default_rng(0).integers(0, 256, count - 8, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def damaged_scene(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    """The Manila scene re-tiled (256 px, DEFLATE) as ``clean/manila_oam_10cm.tif``, the same file with a tile near
    the middle corrupted as ``damaged/manila_oam_10cm.tif``, and that tile: one the scaling sample (a lattice of
    blocks) does not read, so that only pass 1 meets it."""
    root = tmp_path_factory.mktemp("damaged")
    with rasterio.open(SCENES / f"{SCENE}.tif") as source:
        profile = {**source.profile, "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
                   "photometric": "rgb"}
        pixels = source.read()
    clean, damaged = root / "clean" / f"{SCENE}.tif", root / "damaged" / f"{SCENE}.tif"
    clean.parent.mkdir()
    damaged.parent.mkdir()
    with rasterio.open(clean, "w", **profile) as dst:
        dst.write(pixels)
    with rasterio.open(clean) as dataset:
        sampled = {(int(w.row_off) // 256, int(w.col_off) // 256) for w in sample_blocks(dataset, 1, MAX_SAMPLE_PIXELS)[0]}
    unsampled = [(r, c) for r in range(8) for c in range(8) if (r, c) not in sampled]
    row, col = min(unsampled, key=lambda block: abs(block[0] - 3.5) + abs(block[1] - 3.5))
    shutil.copy(clean, damaged)
    corrupt_tile(damaged, row, col)
    return clean, damaged, {"row": row, "col": col, "x": col * 256, "y": row * 256, "width": 256, "height": 256}


TILE, HALO = 512, 32
NATIVE = ["--resample", "native", "--tile", str(TILE), "--halo", str(HALO)]
"""The damaged scene at its own resolution: 16 tiles of 512 px, one per block."""


def test_corrupt_block_in_the_scaling_sample_is_named(damaged_scene, tiny_model, tmp_path, capsys):
    """A corrupt block that the scaling sample reads is named while planning."""
    path = tmp_path / f"{SCENE}.tif"
    shutil.copy(damaged_scene[0], path)
    corrupt_tile(path, 2, 2)
    code = main(["run", str(path), str(tmp_path / "out"), *model_options(tiny_model), *IN_PROCESS])
    assert_refused(code, capsys.readouterr().err, tmp_path / "out", "source block (row 2, col 2) at x 512-767, y 512-767",
                   "--skip-bad-blocks")
    assert not (tmp_path / "out").exists()


def test_corrupt_block_is_named_then_skipped_on_resume(damaged_scene, tiny_model, tmp_path, capsys):
    clean, damaged, bad = damaged_scene
    out = tmp_path / "out"
    code = main(["run", str(damaged), str(out), *model_options(tiny_model), *NATIVE])  # the default local cluster, threads
    err = capsys.readouterr().err
    named = f"source block (row {bad['row']}, col {bad['col']}) at x {bad['x']}-{bad['x'] + 255}, y {bad['y']}-{bad['y'] + 255}"
    assert_refused(code, err, out, f"{named} cannot be read", "rerun with --skip-bad-blocks")
    assert "distributed" not in err  # no log of the workers (threads of this process) either
    assert (out / f".{SCENE}.partial").is_dir()

    assert main(["run", str(damaged), str(out), *model_options(tiny_model), *NATIVE, *IN_PROCESS, "--skip-bad-blocks",
                 "--resume"]) == 0
    assert f"note: 1 unreadable source block(s) written as nodata (--skip-bad-blocks): {named}" in capsys.readouterr().out
    assert json.loads((out / SCENE / "item.json").read_text())["properties"]["geosal:bad_blocks"] == [bad]
    assert main(["run", str(clean), str(tmp_path / "clean"), *model_options(tiny_model), *NATIVE, *IN_PROCESS]) == 0
    ours, theirs = out / SCENE, tmp_path / "clean" / SCENE
    combined = read_unit_layer(ours / "combined.tif")
    rows, cols = footprint(ours, "combined", bad)
    assert np.isnan(combined[rows.start + 1 : rows.stop - 1, cols.start + 1 : cols.stop - 1]).all()  # the block is nodata
    # the raw maps (pass 1) of the tiles whose window does not reach the block are those of the clean file (the
    # combined map is not: the scene statistics that normalise it lost the block's pixels)
    rows, cols = footprint(ours, "scale_1", bad)
    raw = [zarr.open_group(str(folder / "saliency.zarr"), mode="r")["scale_1"][:] for folder in (ours, theirs)]
    far = np.ones(raw[0].shape, bool)
    far[reached(rows), reached(cols)] = False
    assert far.sum() > 1000 and np.isfinite(raw[1][far]).all()
    np.testing.assert_array_equal(raw[0][far], raw[1][far])


def footprint(folder: Path, layer: str, bad: dict[str, int]) -> tuple[slice, slice]:
    """Rows and columns of ``layer``'s grid (``combined`` or a raw map) under the source block ``bad``."""
    store = zarr.open_group(str(folder / "saliency.zarr"), mode="r")
    name = "" if layer == "combined" else f"_{layer}"
    x, y = store[f"x{name}"][:], store[f"y{name}"][:]
    with rasterio.open(SCENES / f"{SCENE}.tif") as source:
        left, top = source.transform @ (bad["x"], bad["y"])
        right, bottom = source.transform @ (bad["x"] + bad["width"], bad["y"] + bad["height"])
    inside_x, inside_y = np.nonzero((x > left) & (x < right))[0], np.nonzero((y < top) & (y > bottom))[0]
    return slice(inside_y[0], inside_y[-1] + 1), slice(inside_x[0], inside_x[-1] + 1)


def reached(region: slice, stride: int = 2) -> slice:
    """The pixels (of a raw map of ``stride``) of the tile cores whose window (core and halo) reaches ``region``."""
    start, stop = region.start * stride, region.stop * stride  # working pixels
    first = max(0, (start - HALO) // TILE * TILE)
    end = -(-(stop + HALO) // TILE) * TILE
    return slice(first // stride, end // stride)


def test_archive_summary_lists_skipped_blocks(damaged_scene, tiny_model, tmp_path, capsys):
    _, damaged, bad = damaged_scene
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / f"{SCENE}.tif").symlink_to(damaged)
    assert main(["submit", str(archive), str(tmp_path / "out"), *model_options(tiny_model), *NATIVE, *IN_PROCESS,
                 "--skip-bad-blocks"]) == 0
    assert "1 unreadable source block(s) written as nodata" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "summary.json").read_text())["scenes"][0]
    assert record["status"] == "ok" and record["bad_blocks"] == [bad]
    assert any("unreadable source block" in note for note in record["notes"])


def test_spaces_and_non_ascii_paths_on_a_cluster(cluster, reference, tiny_model, tmp_path, capsys):
    folder = tmp_path / "scènes à voir" / "東京 2024"
    folder.mkdir(parents=True)
    scene = folder / "manila oam 10 cm – überflug.tif"
    scene.symlink_to(SCENES / f"{SCENE}.tif")
    out = tmp_path / "sortie où écrire"
    cluster.ensure_workers()
    assert main(["run", str(scene), str(out), "--scheduler", cluster.address, *model_options(tiny_model)]) == 0
    result = out / scene.stem
    assert_identical(result, reference / SCENE)
    assert json.loads((result / "item.json").read_text())["id"] == scene.stem
    with rasterio.open(f'ZARR:"{result}/saliency.zarr":/combined') as store:
        assert store.crs is not None
    assert main(["submit", str(folder.parent), str(tmp_path / "archive out"), *model_options(tiny_model), *IN_PROCESS]) == 0
    summary = json.loads((tmp_path / "archive out" / "summary.json").read_text())
    assert [(s["name"], s["status"]) for s in summary["scenes"]] == [("manila_oam_10_cm___uberflug", "ok")]
    capsys.readouterr()


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs: ``mount(options)`` returns its folder; unmounted at the end. Skipped where the test may not mount
    (it needs root with CAP_SYS_ADMIN, as in a CI container started as root)."""
    folder = tmp_path / "mount"
    folder.mkdir()
    mounted = []

    def mount(options: str) -> Path:
        command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
        if mounted:
            command = ["mount", "-o", f"remount,{options}", str(folder)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'mount failed'}): needs root with CAP_SYS_ADMIN")
        mounted.append(folder)
        return folder

    yield mount
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_output(tmpfs, tiny_model, capsys):
    folder = tmpfs("ro,size=1m")
    code = main(["run", str(SCENES / f"{SCENE}.tif"), str(folder / "out"), *model_options(tiny_model), *IN_PROCESS])
    assert_refused(code, capsys.readouterr().err, folder / "out", "Read-only file system")


def test_full_output_then_resume_with_space(tmpfs, reference, tiny_model, capsys):
    folder = tmpfs("size=600k")
    out = folder / "out"
    code = main(["run", str(SCENES / f"{SCENE}.tif"), str(out), *model_options(tiny_model), *IN_PROCESS])
    line = assert_refused(code, capsys.readouterr().err, out, "No space left on device", "--resume")
    assert "cannot write" in line
    assert not (out / SCENE).exists() and not (out / f".{SCENE}.lock").exists()
    tmpfs("size=64m")
    assert main(["run", str(SCENES / f"{SCENE}.tif"), str(out), *model_options(tiny_model), *IN_PROCESS, "--resume"]) == 0
    assert_identical(out / SCENE, reference / SCENE)
