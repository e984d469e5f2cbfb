"""The Zarr store: georeferencing read back by xarray + rioxarray and by GDAL, regions, bookkeeping."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from affine import Affine
from rasterio.crs import CRS

from geosal.raster import (
    GridSpec,
    block_stats,
    create_store,
    done_blocks,
    inspect_scene,
    mark_block_done,
    read_region,
    update_attrs,
    working_grid,
    write_region,
)
from geosal.raster.store import LOVI_BANDS, ArraySpec

STRIDES = {"scale_1": 2, "scale_2": 4}
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")  # rioxarray's own


def make_store(path, info, target_gsd_m=None, n_blocks=5):
    """A store on ``info``'s working grid (the main grid) with two scale grids; returns (full grid, scale grids)."""
    grid = working_grid(info, target_gsd_m)
    full = GridSpec("", grid.height, grid.width, tuple(grid.transform(info)[:6]), 64)
    scales = [full.downsampled(stride, name, 32) for name, stride in STRIDES.items()]
    arrays = [ArraySpec("combined", full, "f4", float("nan")), ArraySpec("lovi", full, "u1", None, bands=LOVI_BANDS)]
    arrays += [ArraySpec(spec.name, spec, "f4", float("nan")) for spec in scales]
    create_store(path, info.crs_wkt, arrays, n_blocks, list(STRIDES), {"model": "resnet50", "weights": [0.5, 0.5]})
    return full, scales


@pytest.fixture(params=["atlanta_pan_uint16_nodata0.tif", "las_vegas_pan_uint16_epsg4326.tif"])
def store(request, scenes_dir, tmp_path):
    """A store for a projected and a geographic scene, with every array's data written."""
    info = inspect_scene(scenes_dir / request.param)
    path = tmp_path / "saliency.zarr"
    full, scales = make_store(path, info, target_gsd_m=0.7 if info.is_geographic else None)
    rng = np.random.default_rng(0)
    data = {"combined": rng.random((full.height, full.width), dtype=np.float32),
            "lovi": rng.integers(0, 256, (4, full.height, full.width), dtype=np.uint8)}
    data["combined"][:10] = np.nan
    for spec in scales:
        data[spec.name] = rng.random((spec.height, spec.width), dtype=np.float32)
    for name, values in data.items():
        write_region(path, name, 0, 0, values)
    return path, info, {spec.name: spec for spec in [full, *scales]}, data


def assert_transform_close(actual, expected):
    np.testing.assert_allclose(tuple(actual)[:6], tuple(expected)[:6], rtol=1e-9, atol=1e-12)


def test_downsampled_grid():
    full = GridSpec("", 1001, 640, (0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0), 256)
    scale = full.downsampled(4, "scale_2", 64)
    assert (scale.name, scale.height, scale.width, scale.chunk) == ("scale_2", 251, 160, 64)
    assert scale.affine == Affine(2.0, 0.0, 1000.0, 0.0, -2.0, 2000.0)


def test_xarray_and_rioxarray_read_every_grid(store):
    path, info, grids, data = store
    ds = xr.open_zarr(path)
    assert ds.attrs["model"] == "resnet50" and set(ds.attrs["grids"]) == set(grids)
    for name, spec in [("combined", grids[""]), ("lovi", grids[""]),
                       ("scale_1", grids["scale_1"]), ("scale_2", grids["scale_2"])]:
        array = ds[name]
        assert array.rio.crs == info.crs
        assert array.rio.shape == (spec.height, spec.width)
        assert_transform_close(array.rio.transform(), spec.transform)
        np.testing.assert_array_equal(array.values, data[name])
    assert ds["lovi"].dtype == np.uint8 and list(ds["band"].values) == [1, 2, 3, 4]
    # pixel-centre coordinates
    working = grids[""].affine
    assert float(ds.x[0]) == pytest.approx((working @ (0.5, 0.5))[0], rel=1e-12)
    assert float(ds.y[-1]) == pytest.approx((working @ (0.5, grids[""].height - 0.5))[1], rel=1e-12)


def test_gdal_zarr_driver_reads_every_grid(store):
    path, info, grids, data = store
    cases = [("combined", grids[""], 1, "nan"), ("lovi", grids[""], 4, None),
             ("scale_2", grids["scale_2"], 1, "nan")]
    for name, spec, count, nodata in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", rasterio.errors.NotGeoreferencedWarning)
            dataset = rasterio.open(f'ZARR:"{path}":/{name}')
        with dataset:
            assert dataset.crs == info.crs
            assert (dataset.count, dataset.height, dataset.width) == (count, spec.height, spec.width)
            assert_transform_close(dataset.transform, spec.transform)
            assert (nodata is None and dataset.nodata is None) or np.isnan(dataset.nodata)
            values = dataset.read()
        np.testing.assert_array_equal(values.reshape(data[name].shape), data[name])


@pytest.mark.parametrize("dropped", [["_CRS"], ["grid_mapping", "coordinates"]])
def test_gdal_finds_the_crs_through_either_attribute(tmp_path, scenes_dir, dropped):
    """CF grid mapping for GDAL >= 3.9, ``_CRS`` for older GDAL: each suffices on its own."""
    path = tmp_path / "s.zarr"
    info = inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif")
    make_store(path, info)
    (path / ".zmetadata").unlink()
    attrs_file = path / "combined" / ".zattrs"
    attrs = json.loads(attrs_file.read_text())
    for key in dropped:
        del attrs[key]
    attrs_file.write_text(json.dumps(attrs))
    with rasterio.open(f'ZARR:"{path}":/combined') as dataset:
        assert dataset.crs == info.crs


def test_layout_chunks_and_fill_values(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    full, scales = make_store(path, inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif"), n_blocks=7)
    root = zarr.open_group(path, mode="r", zarr_format=2)
    assert root["combined"].chunks == (64, 64) and root["lovi"].chunks == (4, 64, 64)
    assert root["scale_2"].chunks == (32, 32) and root["scale_2"].shape == (58, 96)
    assert root["pass1_done"].chunks == (1,) and root["pass1_stats"].chunks == (1, 2, 3)
    assert root["pass1_stats"].shape == (7, 2, 3)
    assert np.isnan(read_region(path, "combined", 0, 0, 3, 3)).all()
    assert not read_region(path, "lovi", 0, 0, 3, 3).any()
    assert (path / ".zmetadata").exists()
    zarray = json.loads((path / "combined" / ".zarray").read_text())
    assert zarray["compressor"]["id"] == "zstd" and zarray["zarr_format"] == 2


def test_existing_store_is_not_overwritten(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    info = inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif")
    make_store(path, info)
    with pytest.raises(FileExistsError):
        make_store(path, info)


def test_regions_must_be_chunk_aligned(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    full, _ = make_store(path, inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif"))  # 232 x 383, chunk 64
    tile = np.ones((64, 64), np.float32)
    write_region(path, "combined", 64, 128, tile)
    write_region(path, "combined", 192, 320, np.ones((40, 63), np.float32))  # ends at the last row and column
    with pytest.raises(ValueError, match="rows 10:74 are not aligned to its chunks of 64"):
        write_region(path, "combined", 10, 0, tile)
    with pytest.raises(ValueError, match="columns 0:32 are not aligned"):
        write_region(path, "combined", 0, 0, tile[:, :32])
    with pytest.raises(ValueError, match="outside the array"):
        write_region(path, "combined", 192, 0, tile)
    with pytest.raises(ValueError, match="does not fit"):
        write_region(path, "lovi", 0, 0, np.ones((3, 64, 64), np.uint8))
    out = read_region(path, "combined", 60, 120, 8, 12)
    assert np.isnan(out[:4]).all() and np.isnan(out[:, :8]).all() and (out[4:, 8:] == 1).all()


def test_read_region_pads_outside_the_array(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    full, _ = make_store(path, inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif"))
    lovi = np.full((4, 232, 383), 9, np.uint8)
    write_region(path, "lovi", 0, 0, lovi)
    out = read_region(path, "lovi", -2, 380, 5, 6)
    assert out.shape == (4, 5, 6) and out.dtype == np.uint8
    expected = np.zeros((4, 5, 6), np.uint8)
    expected[:, 2:, :3] = 9
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(read_region(path, "scale_1", 500, 500, 2, 2)).all()


def test_pass1_bookkeeping_round_trip(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    make_store(path, inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif"), n_blocks=5)
    assert not done_blocks(path).any()
    stats = np.array([[10.0, 2.5, 1.25], [3.0, 0.5, 0.125]])
    mark_block_done(path, 3, stats)
    mark_block_done(path, 0, stats * 2)
    np.testing.assert_array_equal(done_blocks(path), [True, False, False, True, False])
    all_stats = block_stats(path)
    assert all_stats.shape == (5, 2, 3) and all_stats.dtype == np.float64
    np.testing.assert_array_equal(all_stats[3], stats)
    np.testing.assert_array_equal(all_stats[0], stats * 2)
    assert not all_stats[[1, 2, 4]].any()


def test_update_attrs_reaches_consolidated_readers(tmp_path, scenes_dir):
    path = tmp_path / "s.zarr"
    make_store(path, inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif"))
    update_attrs(path, {"scene_mean": [1.5, 2.5], "model": "vgg16"})
    attrs = xr.open_zarr(path).attrs
    assert attrs["scene_mean"] == [1.5, 2.5] and attrs["model"] == "vgg16" and attrs["weights"] == [0.5, 0.5]


def test_array_and_grid_names_must_not_clash(tmp_path):
    full = GridSpec("", 10, 10, (1.0, 0.0, 0.0, 0.0, -1.0, 10.0), 8)
    other = GridSpec("", 5, 5, (2.0, 0.0, 0.0, 0.0, -2.0, 10.0), 8)
    wkt = CRS.from_epsg(32616).to_wkt()
    with pytest.raises(ValueError, match="unique"):
        create_store(tmp_path / "a.zarr", wkt, [ArraySpec("a", full, "f4", 0.0), ArraySpec("a", full, "f4", 0.0)], 1, ["a"], {})
    with pytest.raises(ValueError, match="unique"):
        create_store(tmp_path / "b.zarr", wkt, [ArraySpec("pass1_done", full, "u1", None)], 1, ["a"], {})
    with pytest.raises(ValueError, match="share a name"):
        create_store(tmp_path / "c.zarr", wkt, [ArraySpec("a", full, "f4", 0.0), ArraySpec("b", other, "f4", 0.0)], 1, ["a"], {})
    assert not list(tmp_path.iterdir())
