"""COG export from the Zarr store: valid COG, overviews, nodata / alpha, exact values."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rio_cogeo.cogeo import cog_validate

from geosal.raster import GridSpec, create_store, write_cog, write_region

WKT = CRS.from_epsg(32616).to_wkt()
FULL = GridSpec("working", 1100, 1300, (0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0), 256)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A 1100 x 1300 store (large enough for two overview levels) with a nodata stripe."""
    path = tmp_path_factory.mktemp("cog") / "saliency.zarr"
    create_store(path, WKT, FULL, [FULL.downsampled(4, "scale_1", 128)], 1, {})
    rng = np.random.default_rng(0)
    combined = rng.random((FULL.height, FULL.width), dtype=np.float32)
    combined[:100] = np.nan
    lovi = rng.integers(0, 256, (4, FULL.height, FULL.width), dtype=np.uint8)
    lovi[3] = np.where(np.isnan(combined), 0, 255)
    write_region(path, "combined", 0, 0, combined)
    write_region(path, "lovi", 0, 0, lovi)
    return path, combined, lovi


def test_combined_cog(store, tmp_path):
    path, combined, _ = store
    cog = tmp_path / "combined.tif"
    write_cog(path, "combined", cog, WKT, FULL.transform, nodata=float("nan"), window=512)
    valid, errors, warnings = cog_validate(cog)
    assert valid and not errors and not warnings
    with rasterio.open(cog) as dataset:
        assert dataset.profile["compress"] == "deflate" and dataset.block_shapes[0] == (512, 512)
        assert dataset.overviews(1) == [2, 4]
        assert dataset.dtypes[0] == "float32" and np.isnan(dataset.nodata)
        assert dataset.crs == CRS.from_wkt(WKT) and tuple(dataset.transform[:6]) == FULL.transform
        np.testing.assert_array_equal(dataset.read(1), combined)
        overview = dataset.read(1, out_shape=(275, 325))
    assert np.isnan(overview[:25]).all() and np.isfinite(overview[26:]).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["combined.tif"]  # no temporary file left


def test_lovi_cog_has_an_alpha_band(store, tmp_path):
    path, _, lovi = store
    cog = tmp_path / "lovi.tif"
    write_cog(path, "lovi", cog, WKT, FULL.transform, alpha=True)
    assert cog_validate(cog)[0]
    with rasterio.open(cog) as dataset:
        assert dataset.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha)
        assert MaskFlags.alpha in dataset.mask_flag_enums[0]
        assert dataset.nodata is None and dataset.dtypes == ("uint8",) * 4
        assert dataset.overviews(1) == [2, 4]
        np.testing.assert_array_equal(dataset.read(), lovi)
        np.testing.assert_array_equal(dataset.dataset_mask() > 0, lovi[3] > 0)


def test_alpha_needs_four_bands(store, tmp_path):
    with pytest.raises(ValueError, match="needs 4 bands"):
        write_cog(store[0], "combined", tmp_path / "x.tif", WKT, FULL.transform, alpha=True)
