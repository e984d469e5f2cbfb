"""Tile pyramids on any grid, and layers decoded as xarray and GDAL decode them (scale, offset, fill / nodata)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
import zarr
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.viewer.errors import NotFound, ViewerError
from geosal.viewer.grids import TILE, Grid
from geosal.viewer.sources import CogSource, ZarrSource, read_tile


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.floats(0.01, 100), st.floats(0.01, 100))
def test_every_level_tiles_the_whole_grid_once(height, width, a, e):
    grid = Grid.from_gdal((height, width), (a, 0.0, 500.0, 0.0, -e, 9000.0))
    assert grid.tiles(0) == (1, 1)  # the coarsest level is one tile
    assert grid.factor(grid.levels - 1) == 1  # the finest is the grid's own pixels
    for z in range(grid.levels):
        rows, cols = grid.tiles(z)
        factor = grid.factor(z)
        first = grid.tile_window(z, 0, 0)
        last = grid.tile_window(z, cols - 1, rows - 1)
        assert first == (0, 0, factor)
        assert last[0] < height <= last[0] + TILE * factor and last[1] < width <= last[1] + TILE * factor
        with pytest.raises(NotFound):
            grid.tile_window(z, cols, 0)
        matrix = grid.tile_matrix()
        tile_width = matrix["tile_size"][0] * matrix["resolutions"][z]  # what OpenLayers computes
        tile_height = matrix["tile_size"][1] * matrix["resolutions"][z]
        assert tile_width == pytest.approx(TILE * factor * a) and tile_height == pytest.approx(TILE * factor * e)


@given(st.integers(0, 999), st.integers(0, 799))
def test_pixel_lookup_inverts_the_transform(row, col):
    grid = Grid.from_gdal((1000, 800), (0.5, 0.0, 733601.0, 0.0, -0.25, 3725139.0))
    x, y = grid.transform @ (col + 0.3, row + 0.7)
    assert grid.pixel(x, y) == (row, col)
    assert grid.pixel(*(grid.transform @ (800.5, 10))) is None


def test_rotated_or_south_up_grids_are_refused():
    with pytest.raises(ViewerError, match="north-up"):
        Grid.from_gdal((10, 10), (1.0, 0.2, 0.0, 0.0, -1.0, 0.0))
    with pytest.raises(ViewerError, match="north-up"):
        Grid.from_gdal((10, 10), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0))


def test_zarr_values_are_decoded_as_xarray_decodes_them(tmp_path):
    """A quantised map: uint16 with a CF scale factor, offset and fill value."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 65535, (300, 270), dtype=np.uint16)
    raw[:20, :30] = 65535
    root = zarr.open_group(str(tmp_path / "q.zarr"), mode="w", zarr_format=2)
    array = root.create_array("q", shape=raw.shape, chunks=(128, 128), dtype="u2", fill_value=65535)
    array[:] = raw
    array.attrs.update({"scale_factor": 1 / 65534, "add_offset": -0.25, "_ARRAY_DIMENSIONS": ["y", "x"]})
    zarr.consolidate_metadata(str(tmp_path / "q.zarr"), zarr_format=2)
    expected = xr.open_zarr(tmp_path / "q.zarr")["q"].values  # xarray's own CF decoding
    source = ZarrSource(zarr.open_group(str(tmp_path / "q.zarr"), mode="r")["q"], Grid.from_gdal(raw.shape, (1, 0, 0, 0, -1, 0)))
    assert source.decoded
    np.testing.assert_allclose(source.read(0, 0, 1, 512)[0], expected, rtol=1e-6, atol=1e-7)
    assert np.isnan(source.read(0, 0, 1, 512)[0, :20, :30]).all()
    np.testing.assert_allclose(source.read(100, 40, 4, 50)[0], expected[100:300:4, 40:240:4], rtol=1e-6, atol=1e-7)
    data, inside = read_tile(source, 256, 256, 1, 256)  # the last tile: 44 x 14 inside the grid
    assert inside.sum() == 44 * 14 and np.isnan(data[0][~inside]).all()
    np.testing.assert_allclose(data[0, :44, :14], expected[256:, 256:], rtol=1e-6, atol=1e-7)


def test_cog_values_are_decoded_as_gdal_declares_them(tmp_path):
    """A GeoTIFF with a band scale, offset and nodata, read through its overviews."""
    rng = np.random.default_rng(1)
    raw = rng.integers(1, 4000, (700, 600), dtype=np.uint16)
    raw[-50:, -50:] = 0
    path = tmp_path / "scaled.tif"
    profile = {"driver": "GTiff", "width": 600, "height": 700, "count": 1, "dtype": "uint16", "nodata": 0, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "crs": "EPSG:32616", "transform": Affine(0.5, 0, 733601, 0, -0.5, 3725139)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(raw, 1)
        dst.scales, dst.offsets = (0.001,), (-1.0,)
        dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    expected = rioxarray.open_rasterio(path, mask_and_scale=True).values[0]  # GDAL's scale, offset and mask via rioxarray
    source = CogSource(path)
    assert source.decoded and (source.grid.height, source.grid.width) == (700, 600)
    np.testing.assert_allclose(source.read(0, 0, 1, 1024)[0], expected, rtol=1e-6)
    coarse = source.read(0, 0, 4, 256)[0]
    assert coarse.shape == (175, 150)
    with rasterio.open(path, OVERVIEW_LEVEL=1) as overview:  # factor 4
        np.testing.assert_allclose(coarse[:-13, :-13], overview.read(1)[:-13, :-13] * 0.001 - 1.0, atol=1e-6)
    assert math.isnan(coarse[-1, -1])


def test_coarse_zarr_reads_of_many_chunks_sample_more_sparsely(tmp_path):
    values = np.arange(512 * 384, dtype=np.float32).reshape(512, 384)
    root = zarr.open_group(str(tmp_path / "m.zarr"), mode="w", zarr_format=2)
    root.create_array("m", shape=values.shape, chunks=(32, 32), dtype="f4", fill_value=np.nan)[:] = values
    grid = Grid.from_gdal(values.shape, (1, 0, 0, 0, -1, 0))
    bounded = ZarrSource(zarr.open_group(str(tmp_path / "m.zarr"), mode="r")["m"], grid, max_chunks=16)
    np.testing.assert_array_equal(bounded.read(0, 0, 1, 256)[0], values[:256, :256])  # full resolution: every pixel
    # every 2nd pixel falls in all 16 x 12 chunks: too many; every 128th in 4 x 3, each repeated 64 times
    coarse = bounded.read(0, 0, 2, 256)[0]
    assert coarse.shape == (256, 192)
    np.testing.assert_array_equal(coarse, np.repeat(np.repeat(values[::128, ::128], 64, axis=0), 64, axis=1))
    unbounded = ZarrSource(bounded.array, grid)
    np.testing.assert_array_equal(unbounded.read(0, 0, 2, 256)[0], values[::2, ::2])


def test_an_rgb_cog_with_an_internal_mask_reads_as_rgba(tmp_path):
    """LOVI's COG: JPEG RGB with GDAL's internal mask; the mask becomes the alpha band."""
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 255, (3, 300, 260), dtype=np.uint8)
    mask = np.full((300, 260), 255, dtype=np.uint8)
    mask[:64, :64] = 0
    path = tmp_path / "rgb.tif"
    profile = {"driver": "GTiff", "width": 260, "height": 300, "count": 3, "dtype": "uint8", "tiled": True,
               "blockxsize": 256, "blockysize": 256, "photometric": "RGB", "crs": "EPSG:32616",
               "transform": Affine(0.5, 0, 733601, 0, -0.5, 3725139)}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)
        dst.write_mask(mask)
    source = CogSource(path)
    assert source.rgba and source.bands == 4 and not source.decoded
    data = source.read(0, 0, 1, 512)
    assert data.shape == (4, 300, 260)
    np.testing.assert_array_equal(data[:3], rgb)
    np.testing.assert_array_equal(data[3], mask)
