"""Scene inspection, the working grid and padded windowed reads, on the real scenes and on
small rasters written for each case."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
import zarr
from affine import Affine
from pyproj import Geod
from rasterio.control import GroundControlPoint
from rasterio.enums import ColorInterp, Resampling
from rasterio.windows import Window

from geosal.raster import RasterInputError, WorkingGrid, inspect_scene, read_window, working_grid

# name: (dtype, data bands, mask source, nodata, gsd_m, geographic, block shape, overview factors)
SCENES_EXPECTED = {
    "atlanta_pan_uint16_nodata0.tif": ("uint16", (1,), "nodata", 0.0, (0.5, 0.5), False, (4, 900), ()),
    "colorado_hro_15cm_small.tif": ("uint8", (1, 2, 3), "none", None, (0.1498, 0.1500), False, (7, 383), ()),
    "florida_neon_10cm_nodata255.tif": ("uint8", (1, 2, 3), "nodata", 255.0, (0.1, 0.1), False, (6, 400), ()),
    "landsat_rgb_300m_nodata0.tif": ("uint8", (1, 2, 3), "nodata", 0.0, (300.04, 300.04), False, (3, 791), ()),
    "las_vegas_pan_uint16_epsg4326.tif": ("uint16", (1,), "none", None, (0.2430, 0.2996), True, (3, 1300), ()),
    "manila_oam_10cm.tif": ("uint8", (1, 2, 3), "none", None, (0.1, 0.1), False, (16, 2048), ()),
    "naip_rgbn_5m_nodata0.tif": ("uint8", (1, 2, 3, 4), "nodata", 0.0, (5.0, 5.0), False, (512, 512), (2,)),
    "netherlands_25cm_tiled.tif": ("uint8", (1, 2, 3), "none", None, (0.25, 0.25), False, (256, 256), ()),
}


def one_line_naming(exc: pytest.ExceptionInfo, path) -> str:
    """The error message, checked to be one line that starts with the file name."""
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_the_table_covers_every_scene(scenes_dir):
    assert sorted(p.name for p in scenes_dir.glob("*.tif")) == sorted(SCENES_EXPECTED)


@pytest.mark.parametrize("name", sorted(SCENES_EXPECTED))
def test_inspect_every_real_scene(scenes_dir, name):
    dtype, bands, mask_source, nodata, gsd, geographic, block, overviews = SCENES_EXPECTED[name]
    info = inspect_scene(scenes_dir / name)
    with rasterio.open(scenes_dir / name) as dataset:
        assert (info.width, info.height, info.band_count) == (dataset.width, dataset.height, dataset.count)
        assert info.affine == dataset.transform
        assert info.crs == dataset.crs
    assert info.crs_wkt
    assert (info.dtype, info.bands, info.mask_source, info.nodata) == (dtype, bands, mask_source, nodata)
    assert info.gsd_m == pytest.approx(gsd, rel=1e-3)
    assert info.is_geographic is geographic
    assert (info.block_shape, info.overview_factors) == (block, overviews)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.width = 1


def test_geographic_gsd_is_the_geodesic_pixel_size_at_the_centre(scenes_dir):
    info = inspect_scene(scenes_dir / "las_vegas_pan_uint16_epsg4326.tif")
    lon, lat = info.affine @ (info.width / 2, info.height / 2)
    geod = Geod(ellps="WGS84")
    along_x = geod.inv(lon, lat, lon + info.affine.a, lat)[2]
    along_y = geod.inv(lon, lat, lon, lat + info.affine.e)[2]
    assert info.gsd_m == pytest.approx((along_x, along_y), rel=1e-4)


def test_band_selection(scenes_dir):
    path = scenes_dir / "naip_rgbn_5m_nodata0.tif"
    assert inspect_scene(path, bands=[4, 1]).bands == (4, 1)
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path, bands=(1, 5))
    assert one_line_naming(exc, path).endswith("band 5 is out of range (the raster has 4 bands)")
    with pytest.raises(RasterInputError, match="band 0 is out of range"):
        inspect_scene(path, bands=(0,))


def test_missing_file(tmp_path):
    path = tmp_path / "absent.tif"
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("no such file")


def test_text_file_named_tif(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("not a raster\n")
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("not a raster GDAL can read")


def test_truncated_tiff_whose_header_is_lost(scenes_dir, tmp_path):
    data = (scenes_dir / "colorado_hro_15cm_small.tif").read_bytes()
    path = tmp_path / "truncated.tif"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("not a raster GDAL can read")


def test_truncated_tiff_that_still_opens(scenes_dir, tmp_path):
    data = (scenes_dir / "naip_rgbn_5m_nodata0.tif").read_bytes()
    path = tmp_path / "truncated.tif"
    path.write_bytes(data[: len(data) // 2])
    with rasterio.open(path) as dataset:  # the header survives: GDAL opens it
        assert dataset.count == 4
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("pixel data is truncated or corrupt")


def test_no_georeference(write_raster):
    path = write_raster("plain.tif", np.zeros((8, 8), "uint8"), crs=None, transform=None)
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("no geotransform (the raster is not georeferenced)")
    info = inspect_scene(path, allow_missing_georeference=True)
    assert (info.crs_wkt, info.affine, info.gsd_m) == (None, Affine.identity(), (1.0, 1.0))
    assert not info.is_geographic


def test_transform_without_crs(write_raster):
    path = write_raster("nocrs.tif", np.zeros((8, 8), "uint8"), crs=None)
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("no coordinate reference system (CRS)")
    assert inspect_scene(path, allow_missing_georeference=True).gsd_m == (0.5, 0.5)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_gcps_only(write_raster):
    gcps = [GroundControlPoint(0, 0, 733601.0, 3725139.0), GroundControlPoint(0, 8, 733605.0, 3725139.0),
            GroundControlPoint(8, 0, 733601.0, 3725135.0)]
    path = write_raster("gcps.tif", np.zeros((8, 8), "uint8"), crs=None, transform=None)
    with rasterio.open(path, "r+") as dataset:
        dataset.gcps = (gcps, rasterio.crs.CRS.from_epsg(32616))
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert "ground control points only" in one_line_naming(exc, path)


def test_rotated_transform(write_raster):
    rotated = Affine.translation(733601.0, 3725139.0) @ Affine.rotation(10) @ Affine.scale(0.5)
    path = write_raster("rotated.tif", np.zeros((8, 8), "uint8"), transform=rotated)
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert "rotated geotransform" in one_line_naming(exc, path)


@pytest.mark.parametrize("dtype", ["complex64", "int8", "int32", "uint32"])
def test_unsupported_data_types(write_raster, dtype):
    path = write_raster(f"{dtype}.tif", np.zeros((8, 8), dtype))
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert f"data type {dtype} is not supported" in one_line_naming(exc, path)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
def test_supported_data_types(write_raster, dtype):
    assert inspect_scene(write_raster(f"{dtype}.tif", np.zeros((8, 8), dtype))).dtype == dtype


def test_zero_size_raster_is_refused_by_gdal(tmp_path):
    path = tmp_path / "empty.vrt"
    path.write_text('<VRTDataset rasterXSize="0" rasterYSize="10"><VRTRasterBand dataType="Byte" band="1"/>'
                    "</VRTDataset>")
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert one_line_naming(exc, path).endswith("not a raster GDAL can read")


def test_container_of_subdatasets_has_no_bands(tmp_path):
    path = tmp_path / "two.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=2)
    for name in ("a", "b"):
        group.create_array(name, shape=(4, 4), dtype="u1").attrs["_ARRAY_DIMENSIONS"] = ["y", "x"]
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path)
    assert "no raster bands (it holds subdatasets" in one_line_naming(exc, path)


def rgba_raster(write_raster, alpha: np.ndarray):
    data = np.stack([np.full(alpha.shape, v, "uint8") for v in (10, 20, 30)] + [alpha])
    return write_raster("rgba.tif", data, photometric="RGB", alpha="YES")


def test_alpha_band_is_the_mask_not_a_data_band(write_raster):
    alpha = np.full((20, 30), 255, "uint8")
    alpha[:5] = 0
    path = rgba_raster(write_raster, alpha)
    with rasterio.open(path) as dataset:
        assert dataset.colorinterp[3] == ColorInterp.alpha
    info = inspect_scene(path)
    assert (info.bands, info.band_count, info.mask_source) == ((1, 2, 3), 4, "alpha")
    with pytest.raises(RasterInputError) as exc:
        inspect_scene(path, bands=(1, 4))
    assert one_line_naming(exc, path).endswith("band 4 is the alpha band, not a data band")
    with rasterio.open(path) as dataset:
        data, valid = read_window(dataset, info, working_grid(info), -2, 0, 24, 30)
    assert data.shape == (3, 24, 30)
    np.testing.assert_array_equal(valid, np.pad(alpha > 0, ((2, 2), (0, 0))))


def internal_mask_raster(write_raster, mask: np.ndarray):
    path = write_raster("masked.tif", np.full((2, *mask.shape), 7, "uint16"))
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dataset:
        dataset.write_mask(mask)
    return path


def test_internal_mask(write_raster):
    mask = np.ones((20, 30), bool)
    mask[3:9, 4:12] = False
    path = internal_mask_raster(write_raster, mask)
    assert not list(path.parent.glob("*.msk"))
    info = inspect_scene(path)
    assert info.mask_source == "internal_mask"
    with rasterio.open(path) as dataset:
        data, valid = read_window(dataset, info, working_grid(info), 0, 0, 20, 30)
    np.testing.assert_array_equal(valid, mask)
    assert data.dtype == np.uint16


def test_float_nan_is_invalid(write_raster):
    data = np.ones((10, 10), "float32")
    data[2, 3] = np.nan
    path = write_raster("float.tif", data)
    info = inspect_scene(path)
    with rasterio.open(path) as dataset:
        _, valid = read_window(dataset, info, working_grid(info), 0, 0, 10, 10)
    assert not valid[2, 3] and valid.sum() == 99


def test_working_grid_native_and_resampled(scenes_dir):
    info = inspect_scene(scenes_dir / "netherlands_25cm_tiled.tif")
    native = working_grid(info)
    assert native == WorkingGrid(1000, 1000, 1.0, 1.0) and native.is_native
    assert native.transform(info) == info.affine
    coarse = working_grid(info, target_gsd_m=0.6)
    assert (coarse.width, coarse.height) == (417, 417)
    assert coarse.scale_x == coarse.scale_y == 1000 / 417 and not coarse.is_native
    assert coarse.transform(info) == info.affine @ Affine.scale(1000 / 417)
    # the working grid covers exactly the source extent
    assert coarse.transform(info) @ (coarse.width, coarse.height) == pytest.approx(info.affine @ (1000, 1000))
    assert working_grid(info, target_gsd_m=1e6) == WorkingGrid(1, 1, 1000.0, 1000.0)
    with pytest.raises(RasterInputError) as exc:
        working_grid(info, target_gsd_m=0)
    assert one_line_naming(exc, info.path).endswith("target ground sample distance must be > 0 m, got 0")


EDGE_SCENES = ["atlanta_pan_uint16_nodata0.tif", "colorado_hro_15cm_small.tif", "landsat_rgb_300m_nodata0.tif",
               "naip_rgbn_5m_nodata0.tif", "netherlands_25cm_tiled.tif"]


@pytest.mark.parametrize("name", EDGE_SCENES)
def test_windows_across_every_edge_are_edge_padded(scenes_dir, name):
    info = inspect_scene(scenes_dir / name)
    grid = working_grid(info)
    with rasterio.open(scenes_dir / name) as dataset:
        full = dataset.read(list(info.bands))
        full_valid = dataset.dataset_mask() > 0
        h, w = info.height, info.width
        for row_off, col_off in [(-13, 40), (40, -7), (h - 50, 40), (40, w - 20), (-9, -11), (h - 30, w - 25)]:
            data, valid = read_window(dataset, info, grid, row_off, col_off, 64, 72)
            assert data.shape == (len(info.bands), 64, 72) and data.dtype == info.dtype
            assert valid.shape == (64, 72) and valid.dtype == bool
            r0, c0 = max(row_off, 0), max(col_off, 0)
            r1, c1 = min(row_off + 64, h), min(col_off + 72, w)
            pad = ((r0 - row_off, row_off + 64 - r1), (c0 - col_off, col_off + 72 - c1))
            np.testing.assert_array_equal(data, np.pad(full[:, r0:r1, c0:c1], ((0, 0), *pad), mode="edge"))
            np.testing.assert_array_equal(valid, np.pad(full_valid[r0:r1, c0:c1], pad))


def test_nodata_pixels_are_invalid(scenes_dir):
    name = "landsat_rgb_300m_nodata0.tif"
    info = inspect_scene(scenes_dir / name)
    with rasterio.open(scenes_dir / name) as dataset:
        data, valid = read_window(dataset, info, working_grid(info), -5, -5, info.height + 10, info.width + 10)
    inside = (slice(5, -5), slice(5, -5))
    assert 0.2 < 1 - valid[inside].mean() < 0.5  # about a third of the scene is nodata
    np.testing.assert_array_equal(valid[inside], (data[:, 5:-5, 5:-5] != 0).any(axis=0))
    assert not valid[:5].any() and not valid[:, -5:].any()


def test_window_wholly_outside(scenes_dir):
    info = inspect_scene(scenes_dir / "colorado_hro_15cm_small.tif")
    with rasterio.open(info.path) as dataset:
        data, valid = read_window(dataset, info, working_grid(info), -100, 50, 64, 64)
    assert data.shape == (3, 64, 64) and not data.any() and not valid.any()
    with pytest.raises(ValueError):
        read_window(None, info, working_grid(info), 0, 0, 0, 10)


def test_resampled_grid_reads_match_rasterio_and_stitch_seamlessly(scenes_dir):
    info = inspect_scene(scenes_dir / "atlanta_pan_uint16_nodata0.tif")
    grid = working_grid(info, target_gsd_m=1.25)
    assert (grid.width, grid.height, grid.scale_x) == (360, 360, 2.5)
    with rasterio.open(info.path) as dataset:
        data, valid = read_window(dataset, info, grid, 100, 50, 64, 80)
        direct = dataset.read(1, window=Window(50 * 2.5, 100 * 2.5, 80 * 2.5, 64 * 2.5), out_shape=(64, 80),
                              resampling=Resampling.average)
        np.testing.assert_array_equal(data[0], direct)
        assert valid.all()
        banded, _ = read_window(dataset, info, grid, 100, 50, 64, 80, max_read_bytes=3000)  # bands of 6 rows
        np.testing.assert_array_equal(banded, data)
        whole = dataset.read(1, out_shape=(360, 360), resampling=Resampling.average)
        pieces = np.block([[read_window(dataset, info, grid, r, c, 120, 120)[0][0] for c in (0, 120, 240)]
                           for r in (0, 120, 240)])
        np.testing.assert_array_equal(pieces, whole)
        edge, edge_valid = read_window(dataset, info, grid, 330, 340, 64, 64)
    assert edge.shape == (1, 64, 64)
    np.testing.assert_array_equal(edge[0, :30, :20], whole[330:, 340:])
    np.testing.assert_array_equal(edge[0, 30:, :20], np.repeat(whole[359:, 340:], 34, axis=0))
    assert edge_valid[:30, :20].all() and not edge_valid[30:].any() and not edge_valid[:, 20:].any()

