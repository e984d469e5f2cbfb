"""Scene-wide scaling to uint8: percentiles of the valid pixels only."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geosal.raster import BandScaling, RasterInputError, compute_scaling, inspect_scene, to_uint8
from geosal.raster.scaling import sample_blocks


def scaling_of(path, **kwargs) -> BandScaling:
    info = inspect_scene(path)
    with rasterio.open(path) as dataset:
        return compute_scaling(dataset, info, **kwargs)


def test_uint16_scene_uses_percentiles_of_every_pixel(scenes_dir):
    path = scenes_dir / "las_vegas_pan_uint16_epsg4326.tif"
    with rasterio.open(path) as dataset:
        values = dataset.read(1).astype(float)
    scaling = scaling_of(path)
    assert scaling.method == "percentile"
    assert scaling.low == pytest.approx((np.percentile(values, 2),))
    assert scaling.high == pytest.approx((np.percentile(values, 98),))
    assert scaling.mean == pytest.approx((values.mean(),))


def test_decimated_sample_gives_close_percentiles(scenes_dir):
    path = scenes_dir / "las_vegas_pan_uint16_epsg4326.tif"
    full, sampled = scaling_of(path), scaling_of(path, max_sample_pixels=20_000)
    assert sampled.low == pytest.approx(full.low, rel=0.05)
    assert sampled.high == pytest.approx(full.high, rel=0.05)


def test_nodata_pixels_do_not_drag_the_low_percentile(scenes_dir, write_raster):
    """The uint16 nodata-0 scene with a third of it set to nodata, as at a swath edge."""
    with rasterio.open(scenes_dir / "atlanta_pan_uint16_nodata0.tif") as dataset:
        data, profile = dataset.read(1), dataset.profile
    data[:, :300] = 0
    path = write_raster("edge.tif", data, crs=profile["crs"], transform=profile["transform"], nodata=0)
    scaling = scaling_of(path)
    valid = data[data != 0].astype(float)
    assert np.percentile(data, 2) == 0
    assert scaling.low == pytest.approx((np.percentile(valid, 2),))
    assert scaling.low[0] > 100
    assert scaling.high == pytest.approx((np.percentile(valid, 98),))
    assert scaling.mean == pytest.approx((valid.mean(),))


def test_custom_percentiles_and_multiband(write_raster):
    rng = np.random.default_rng(0)
    data = np.stack([rng.integers(0, 1000, (50, 40)), rng.integers(5000, 9000, (50, 40))]).astype("int16")
    scaling = scaling_of(write_raster("two.tif", data), low_percentile=10, high_percentile=90)
    assert scaling.low == pytest.approx(tuple(np.percentile(data.reshape(2, -1), 10, axis=1)))
    assert scaling.high == pytest.approx(tuple(np.percentile(data.reshape(2, -1), 90, axis=1)))


def test_uint8_scene_is_identity(scenes_dir):
    path = scenes_dir / "landsat_rgb_300m_nodata0.tif"
    scaling = scaling_of(path)
    assert scaling.method == "identity"
    assert scaling.low == (0.0,) * 3 and scaling.high == (255.0,) * 3
    with rasterio.open(path) as dataset:
        data = dataset.read()
        valid = dataset.dataset_mask() > 0
    assert scaling.mean == pytest.approx(tuple(data[:, valid].mean(axis=1)))
    assert to_uint8(data, scaling) is data


def test_all_invalid_raster(write_raster):
    path = write_raster("empty.tif", np.zeros((10, 10), "uint16"), nodata=0)
    with pytest.raises(RasterInputError) as exc:
        scaling_of(path)
    assert str(exc.value) == f"{path}: no valid pixels"


def test_to_uint8_maps_low_to_0_and_high_to_255():
    scaling = BandScaling(low=(100.0, 0.0), high=(1100.0, 10.0), mean=(600.0, 5.0), method="percentile")
    data = np.array([[[0, 100, 600, 1100, 5000]], [[0, 5, 10, -3, 7]]], dtype="int16")
    out = to_uint8(data, scaling)
    assert out.dtype == np.uint8 and out.shape == data.shape
    np.testing.assert_array_equal(out, [[[0, 0, 128, 255, 255]], [[0, 128, 255, 0, 178]]])


def test_to_uint8_degenerate_and_nan():
    scaling = BandScaling(low=(5.0,), high=(5.0,), mean=(5.0,), method="percentile")
    np.testing.assert_array_equal(to_uint8(np.full((1, 2, 2), 5.0, "float32"), scaling), 0)
    scaling = BandScaling(low=(0.0,), high=(1.0,), mean=(0.5,), method="percentile")
    np.testing.assert_array_equal(to_uint8(np.array([[[np.nan, 1.0]]], "float32"), scaling), [[[0, 255]]])
    with pytest.raises(ValueError, match="2 bands but the scaling has 1"):
        to_uint8(np.zeros((2, 1, 1)), scaling)


def test_a_large_raster_is_sampled_in_whole_blocks_on_a_lattice(scenes_dir, write_raster):
    """A uint16 mosaic of 36 blocks, 9 of which fit the budget: the figures come from those blocks only,
    and are close to those of the whole raster (the scene repeats, so any lattice sees the same statistics)."""
    with rasterio.open(scenes_dir / "atlanta_pan_uint16_nodata0.tif") as dataset:
        tile = dataset.read(1)[:768, :768]
    data = np.tile(tile, (2, 2))
    path = write_raster("mosaic.tif", data, nodata=0, tiled=True, blockxsize=256, blockysize=256)
    info = inspect_scene(path)
    with rasterio.open(path) as dataset:
        windows, total = sample_blocks(dataset, 1, 9 * 256 * 256)
        sampled = compute_scaling(dataset, info, max_sample_pixels=9 * 256 * 256)
        full = compute_scaling(dataset, info, max_sample_pixels=data.size)
    assert total == 36 and len(windows) == 9
    assert {(w.row_off // 256, w.col_off // 256) for w in windows} == {(r, c) for r in (1, 3, 5) for c in (1, 3, 5)}
    assert sampled.sample == "blocks 9/36" and full.sample == "all"
    assert sampled.mean == pytest.approx(full.mean, rel=0.05)
    assert sampled.low == pytest.approx(full.low, rel=0.1) and sampled.high == pytest.approx(full.high, rel=0.1)


def test_a_raster_with_overviews_is_read_from_them(scenes_dir):
    path = scenes_dir / "naip_rgbn_5m_nodata0.tif"
    full, sampled = scaling_of(path), scaling_of(path, max_sample_pixels=200_000)
    assert sampled.sample == "overview" and full.sample == "all"
    assert sampled.mean == pytest.approx(full.mean, rel=0.05)


def test_fill_is_the_band_means_as_model_input():
    identity = BandScaling(low=(0.0, 0.0), high=(255.0, 255.0), mean=(100.4, 20.6), method="identity")
    assert identity.fill == (100, 21)
    stretched = BandScaling(low=(100.0,), high=(1100.0,), mean=(600.0,), method="percentile")
    assert stretched.fill == (128,)
