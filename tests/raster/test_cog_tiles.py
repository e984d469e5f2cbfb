"""COGs assembled from separately encoded tiles (geosal.raster.cog_tiles), checked with real GDAL-written and
GDAL-read files: byte for byte against GDAL's COG driver, values and georeferencing read back by rasterio,
rio-cogeo's validator, and the pyramid arithmetic against independent computations."""

from __future__ import annotations

import itertools
import math
import os
import pickle
import struct
import subprocess
import sys
import warnings
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
import tifffile
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning
from rio_cogeo.cogeo import cog_validate

from geosal.raster import cog_tiles
from geosal.raster.cog_tiles import GHOST_AREA, CogLayout, _could_exceed_classic, downsample, encode_tile, write_cog

SCENES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scenes"
UTM = CRS.from_epsg(32616)
UTM_TRANSFORM = (733601.0, 0.5, 0.0, 3725139.0, 0.0, -0.5)  # GDAL order
NAN = float("nan")


def make_layout(width: int, height: int, bands: int = 1, dtype: str = "float32", **options) -> CogLayout:
    options = {"crs_wkt": UTM.to_wkt(), "transform": UTM_TRANSFORM, **options}
    return CogLayout(width=width, height=height, bands=bands, dtype=dtype, **options)


def sample(layout: CogLayout, seed: int = 0) -> np.ndarray:
    """Random ``[bands, height, width]`` data of the layout's dtype; NaN holes for NaN nodata, nodata pixels for
    integer nodata, transparent pixels for alpha."""
    rng = np.random.default_rng(seed)
    shape = (layout.bands, layout.height, layout.width)
    if layout.dtype == "float32":
        data = rng.random(shape).astype(np.float32)
    else:
        data = rng.integers(0, np.iinfo(layout.dtype).max, shape, endpoint=True).astype(layout.dtype)
    holes = rng.random(shape[1:]) < 0.2
    if layout.nodata is not None:
        data[:, holes] = layout.nodata
    if layout.alpha:
        data[-1, holes] = 0
    return data


def pyramid(layout: CogLayout, data: np.ndarray) -> list[np.ndarray]:
    """Level 0 and every overview of ``data``, by repeated :func:`downsample`."""
    levels = [data]
    for _ in layout.levels[1:]:
        levels.append(downsample(layout, levels[-1]))
    return levels


def encoded_tiles(layout: CogLayout, levels: list[np.ndarray]) -> dict[tuple[int, int, int], bytes]:
    tiles = {}
    for level, image in enumerate(levels):
        rows, cols = layout.tiles(level)
        for row in range(rows):
            for col in range(cols):
                top, left, height, width = layout.tile_window(level, row, col)
                tiles[level, row, col] = encode_tile(layout, image[:, top:top + height, left:left + width])
    return tiles


def write_from_data(path: Path, layout: CogLayout, data: np.ndarray, **options) -> list[np.ndarray]:
    """Encode every tile of ``data``'s pyramid, write the COG at ``path``; returns the pyramid."""
    levels = pyramid(layout, data)
    tiles = encoded_tiles(layout, levels)
    write_cog(path, layout, lambda level, row, col: tiles[level, row, col], **options)
    return levels


def gdal_cog(path: Path, data: np.ndarray, crs: CRS, transform: tuple[float, ...], nodata: float | None = None,
             rgb: bool = False, alpha: bool = False, **options) -> Path:
    """``data`` written as a COG by GDAL's COG driver (from a plain GeoTIFF beside it), averaged overviews."""
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
               "dtype": data.dtype, "crs": crs, "transform": Affine.from_gdal(*transform), "nodata": nodata}
    if rgb:
        profile.update(photometric="RGB", alpha="YES" if alpha else "NO")
    source = path.with_suffix(".source.tif")
    with rasterio.open(source, "w", **profile) as dataset:
        dataset.write(data)
    rasterio.shutil.copy(source, path, driver="COG", overview_resampling="average", **options)
    return path


def stored_tiles(path: Path) -> list[list[bytes]]:
    """The raw (still encoded) tiles of every IFD, read with tifffile."""
    raw = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        return [[raw[offset:offset + size] for offset, size in zip(page.dataoffsets, page.databytecounts, strict=True)]
                for page in tif.pages]


def read_level(path: Path, level: int) -> np.ndarray:
    with rasterio.open(path, overview_level=level - 1 if level else None) as dataset:
        return dataset.read()


def assert_valid_cog(path: Path) -> None:
    valid, errors, cog_warnings = cog_validate(path, quiet=True)
    assert (valid, errors, cog_warnings) == (True, [], [])


# ---- the layout ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("height", "width", "tile", "levels"), [
    (1, 1, 512, [(1, 1)]),
    (512, 512, 512, [(512, 512)]),
    (513, 512, 512, [(513, 512), (257, 256)]),
    (1024, 768, 256, [(1024, 768), (512, 384), (256, 192)]),
    (17, 1000, 16, [(17, 1000), (9, 500), (5, 250), (3, 125), (2, 63), (1, 32), (1, 16)]),
])
def test_levels_halve_rounding_up_until_one_tile_holds_the_level(height, width, tile, levels):
    assert make_layout(width, height, tile=tile).levels == tuple(levels)


def test_tiles_and_tile_windows_cover_each_level():
    layout = make_layout(1000, 17, tile=16)
    assert [layout.tiles(level) for level in range(len(layout.levels))] == [
        (2, 63), (1, 32), (1, 16), (1, 8), (1, 4), (1, 2), (1, 1)]
    assert layout.tile_window(0, 1, 62) == (16, 992, 1, 8)
    assert layout.tile_window(4, 0, 3) == (0, 48, 2, 15)


def test_layout_pickles_and_accepts_an_affine():
    layout = make_layout(100, 50, transform=Affine.from_gdal(*UTM_TRANSFORM), nodata=NAN, descriptions=["x"])
    assert layout.transform == UTM_TRANSFORM and layout.descriptions == ("x",)
    restored = pickle.loads(pickle.dumps(layout))
    assert restored.levels == layout.levels and restored.crs_wkt == layout.crs_wkt


@pytest.mark.parametrize(("options", "message"), [
    ({"dtype": "int16"}, "dtype"),
    ({"tile": 100}, "multiple of 16"),
    ({"compression": "lzw"}, "compression"),
    ({"compression_level": 10}, "compression_level"),
    ({"compression": "zstd", "compression_level": 0}, "compression_level"),
    ({"predictor": 3, "dtype": "uint8"}, "predictor 3"),
    ({"photometric": "rgb", "bands": 2}, "too few"),
    ({"alpha": True, "bands": 1}, "too few"),
    ({"transform": (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}, "north-up"),
    ({"transform": (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)}, "north-up"),  # affine (rasterio) order by mistake
    ({"nodata": NAN, "dtype": "uint16"}, "nodata"),
    ({"nodata": 256, "dtype": "uint8"}, "nodata"),
    ({"descriptions": ("a", "b")}, "descriptions"),
    ({"crs_wkt": "not a CRS"}, "crs_wkt"),
])
def test_layout_rejects_what_a_cog_cannot_hold(options, message):
    options = {"bands": 1, **options}
    bands = options.pop("bands")
    with pytest.raises(ValueError, match=message):
        make_layout(64, 64, bands=bands, **options)


# ---- byte for byte what GDAL's COG driver writes ------------------------------------------------------------

GDAL_CASES = {
    "float32-nan-deflate-predictor3": (
        {"dtype": "float32", "nodata": NAN, "predictor": 3}, {"compress": "DEFLATE", "predictor": "YES"}),
    "rgba-zstd": (
        {"bands": 4, "dtype": "uint8", "photometric": "rgb", "alpha": True, "compression": "zstd"},
        {"compress": "ZSTD"}),
    "uint16-3-bands-nodata-predictor2": (
        {"bands": 3, "dtype": "uint16", "nodata": 0, "predictor": 2}, {"compress": "DEFLATE", "predictor": "YES"}),
    "float32-bigtiff": (
        {"dtype": "float32", "nodata": -9999.5, "predictor": 3, "bigtiff": True},
        {"compress": "DEFLATE", "predictor": "YES", "bigtiff": "YES"}),
}


@pytest.mark.parametrize("case", GDAL_CASES)
def test_gdal_tiles_written_by_write_cog_reproduce_gdal_cog_byte_for_byte(tmp_path, case):
    """Sizes where GDAL's overview sizes (n // 2) equal ours ((n + 1) // 2): header, ghost area, every IFD and
    tag, the tile arrays, the tile order, leaders and trailers all come out as GDAL writes them."""
    ours, theirs = GDAL_CASES[case]
    ours = dict(ours)
    bigtiff = ours.pop("bigtiff", None)
    layout = make_layout(768, 1024, tile=256, **{"bands": 1, **ours})
    reference = gdal_cog(tmp_path / "gdal.tif", sample(layout), UTM, UTM_TRANSFORM, nodata=layout.nodata,
                         rgb=layout.photometric == "rgb", alpha=layout.alpha, blocksize=256, **theirs)
    tiles = stored_tiles(reference)
    assert len(tiles) == len(layout.levels)
    write_cog(tmp_path / "ours.tif", layout, lambda level, row, col: tiles[level][row * layout.tiles(level)[1] + col],
              bigtiff=bigtiff)
    assert (tmp_path / "ours.tif").read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("scene", sorted(SCENES.glob("*.tif")), ids=lambda path: path.stem)
def test_crs_and_transform_read_back_as_from_the_cog_gdal_writes(tmp_path, scene):
    with rasterio.open(scene) as source:
        crs, transform = source.crs, source.transform.to_gdal()
    layout = make_layout(50, 30, crs_wkt=crs.to_wkt(), transform=transform, tile=32)
    data = sample(layout)
    write_from_data(tmp_path / "ours.tif", layout, data)
    reference = gdal_cog(tmp_path / "gdal.tif", data, crs, transform, blocksize=32)
    with rasterio.open(tmp_path / "ours.tif") as ours, rasterio.open(reference) as theirs:
        assert ours.crs == theirs.crs and ours.crs.to_wkt() == theirs.crs.to_wkt()
        assert ours.transform == theirs.transform == Affine.from_gdal(*transform)
        assert ours.overviews(1) == theirs.overviews(1) == [2]
    with tifffile.TiffFile(tmp_path / "ours.tif") as ours, tifffile.TiffFile(reference) as theirs:
        geotiff_tags = (33550, 33922, 34735, 34736, 34737)
        assert {code: ours.pages[0].tags.get(code).value for code in geotiff_tags if code in theirs.pages[0].tags} \
            == {code: theirs.pages[0].tags.get(code).value for code in geotiff_tags if code in theirs.pages[0].tags}
        assert sorted(tag.code for tag in ours.pages[0].tags) == sorted(tag.code for tag in theirs.pages[0].tags)


# ---- values read back by GDAL --------------------------------------------------------------------------------

VALUE_CASES = {
    "float32-nan-predictor3-deflate-many-tiles": (300, 170, 32, {"nodata": NAN, "predictor": 3}),
    "float32-nan-predictor3-zstd-1x1": (1, 1, 512, {"nodata": NAN, "predictor": 3, "compression": "zstd"}),
    "float32-predictor2-deflate-just-above-tiles": (513, 257, 256, {"predictor": 2}),
    "float32-predictor1-zstd-bigtiff": (100, 70, 32, {"compression": "zstd", "bigtiff": True}),
    "uint8-rgb-predictor2-deflate": (200, 300, 64, {"bands": 3, "dtype": "uint8", "photometric": "rgb",
                                                    "predictor": 2}),
    "uint8-rgba-zstd-just-above-tiles": (257, 129, 128, {"bands": 4, "dtype": "uint8", "photometric": "rgb",
                                                         "alpha": True, "compression": "zstd"}),
    "uint8-gray-single-tile": (40, 30, 64, {"dtype": "uint8"}),
    "uint16-nodata-predictor2-zstd-17x1000": (1000, 17, 16, {"dtype": "uint16", "nodata": 0, "predictor": 2,
                                                             "compression": "zstd"}),
    "uint16-predictor1-deflate-level9": (90, 33, 16, {"dtype": "uint16", "compression_level": 9}),
}


@pytest.mark.parametrize("case", VALUE_CASES)
def test_every_level_reads_back_as_encoded_and_validates(tmp_path, case):
    width, height, tile, options = VALUE_CASES[case]
    options = dict(options)
    bigtiff = options.pop("bigtiff", None)
    layout = make_layout(width, height, tile=tile, **options)
    path = tmp_path / "ours.tif"
    levels = write_from_data(path, layout, sample(layout), bigtiff=bigtiff)
    assert path.read_bytes()[:4] == (b"II+\0" if bigtiff else b"II*\0")
    for level, expected in enumerate(levels):
        assert np.array_equal(read_level(path, level), expected, equal_nan=True), f"level {level}"
    with rasterio.open(path) as dataset:
        assert len(dataset.overviews(1)) == len(levels) - 1
    assert_valid_cog(path)


def test_reduced_reads_are_served_from_the_overviews(tmp_path):
    """A read at an overview's size (what a GIS does when zoomed out) returns that overview: GDAL recognises
    our odd-rounded overview sizes. (Not for extreme aspect ratios such as 17 x 1000, where GDAL chooses by the
    smaller decimation and resamples another overview, as it does with its own COGs.)"""
    layout = make_layout(1001, 601, bands=3, dtype="uint8", photometric="rgb", tile=64)
    levels = write_from_data(tmp_path / "ours.tif", layout, sample(layout))
    with rasterio.open(tmp_path / "ours.tif") as dataset:
        assert dataset.overviews(1) == [2, 4, 8, 16]
        for expected in levels[1:]:
            assert np.array_equal(dataset.read(out_shape=expected.shape), expected)


@pytest.mark.parametrize("encoder", ["zlib", "libdeflate"])
def test_either_deflate_encoder_writes_what_gdal_reads(tmp_path, monkeypatch, encoder):
    """The optional ``deflate`` package (libdeflate) replaces zlib when installed; both make zlib streams."""
    compress = pytest.importorskip("deflate").zlib_compress if encoder == "libdeflate" else zlib.compress
    monkeypatch.setattr(cog_tiles, "_zlib_compress", compress)
    for options in ({"nodata": NAN, "predictor": 3}, {"bands": 3, "dtype": "uint8", "photometric": "rgb",
                                                      "predictor": 2, "compression_level": 9}):
        layout = make_layout(150, 100, tile=64, **options)
        levels = write_from_data(tmp_path / "deflate.tif", layout, sample(layout))
        for level, expected in enumerate(levels):
            assert np.array_equal(read_level(tmp_path / "deflate.tif", level), expected, equal_nan=True)


def test_rgba_alpha_band_is_recognised_and_masks_every_level(tmp_path):
    layout = make_layout(300, 200, bands=4, dtype="uint8", photometric="rgb", alpha=True, tile=64)
    levels = write_from_data(tmp_path / "rgba.tif", layout, sample(layout))
    for level, expected in enumerate(levels):
        with rasterio.open(tmp_path / "rgba.tif", overview_level=level - 1 if level else None) as dataset:
            assert dataset.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha)
            assert dataset.mask_flag_enums[0] == [MaskFlags.per_dataset, MaskFlags.alpha]
            assert np.array_equal(dataset.dataset_mask(), expected[3])  # GDAL's mask of an alpha band is alpha
            assert np.array_equal(dataset.read(1, masked=True).mask, expected[3] == 0)


def test_float_nan_nodata_is_declared_and_masks(tmp_path):
    layout = make_layout(70, 50, nodata=NAN, predictor=3, tile=32)
    data = sample(layout)
    write_from_data(tmp_path / "float.tif", layout, data)
    with rasterio.open(tmp_path / "float.tif") as dataset:
        assert math.isnan(dataset.nodata)
        assert np.array_equal(dataset.read(1, masked=True).mask, np.isnan(data[0]))


def test_band_descriptions_scales_and_offsets_read_back(tmp_path):
    descriptions = ("saliency <combined> & more &amp; é", None, "third")
    layout = make_layout(20, 10, bands=3, descriptions=descriptions, scales=(2.0, 1.0, 0.1),
                         offsets=(-3.25, 0.0, 1e-20))
    write_from_data(tmp_path / "meta.tif", layout, sample(layout))
    with rasterio.open(tmp_path / "meta.tif") as dataset:
        assert dataset.descriptions == descriptions
        assert dataset.scales == (2.0, 1.0, 0.1) and dataset.offsets == (-3.25, 0.0, 1e-20)
        assert dataset.colorinterp == (ColorInterp.gray, ColorInterp.undefined, ColorInterp.undefined)


# ---- tile encoding --------------------------------------------------------------------------------------------

def test_floating_point_predictor_splits_bytes_into_planes_and_differences_them():
    """One row of 1.0 (0x3f800000) and 2.0 (0x40000000), by hand: big-endian byte planes, then each byte minus
    the byte one sample before, modulo 256."""
    layout = make_layout(16, 1, predictor=3, tile=16, nodata=2.0)  # nodata pads the other 15 rows with 2.0
    data = np.ones((1, 1, 16), np.float32)
    data[0, 0, 8:] = 2.0
    rows = np.frombuffer(zlib.decompress(encode_tile(layout, data)), np.uint8).reshape(16, 64)
    planes = [0x3F] * 8 + [0x40] * 8, [0x80] * 8 + [0x00] * 8, [0] * 16, [0] * 16
    expected_first_row = np.concatenate(planes).astype(np.uint8)
    expected_first_row[1:] -= np.concatenate(planes).astype(np.uint8)[:-1]
    assert np.array_equal(rows[0], expected_first_row)
    assert list(rows[1, :17]) == [0x40] + [0] * 15 + [0xC0]  # 2.0 everywhere: planes 40.., 00.., ...


@pytest.mark.parametrize(("dtype", "nodata", "fill"), [("float32", NAN, NAN), ("float32", None, NAN),
                                                       ("uint16", 7, 7), ("uint8", None, 0)])
def test_edge_tiles_are_padded_to_the_full_tile_with_nodata(dtype, nodata, fill):
    layout = make_layout(100, 100, bands=2, dtype=dtype, nodata=nodata, tile=16)
    data = sample(make_layout(100, 100, bands=2, dtype=dtype))[:, :5, :7]
    pixels = np.frombuffer(zlib.decompress(encode_tile(layout, data)), dtype).reshape(16, 16, 2)
    assert np.array_equal(pixels[:5, :7], data.transpose(1, 2, 0))
    padding = np.ones((16, 16), bool)
    padding[:5, :7] = False
    assert np.array_equal(pixels[padding], np.full((padding.sum(), 2), fill, dtype), equal_nan=True)


@pytest.mark.parametrize(("shape", "dtype"), [((1, 17, 4), "float32"), ((2, 4, 4), "float32"), ((4, 4), "float32"),
                                              ((1, 4, 4), "float64"), ((1, 0, 4), "float32")])
def test_encode_tile_rejects_data_that_is_not_one_tile_of_the_layout(shape, dtype):
    with pytest.raises(ValueError, match="tile data"):
        encode_tile(make_layout(64, 64, tile=16), np.zeros(shape, dtype))


# ---- overviews ------------------------------------------------------------------------------------------------

DOWNSAMPLE_CASES = {
    "float32-nan": {"nodata": NAN},
    "uint16-nodata-0": {"bands": 2, "dtype": "uint16", "nodata": 0},
    "uint8-rgb": {"bands": 3, "dtype": "uint8", "photometric": "rgb"},
    "uint8-rgba": {"bands": 4, "dtype": "uint8", "photometric": "rgb", "alpha": True},
}


@pytest.mark.parametrize("case", DOWNSAMPLE_CASES)
def test_downsample_equals_gdal_average_overview_on_even_sizes(tmp_path, case):
    """GDAL's ``average`` with an alpha band averages colour and alpha over the pixels with alpha > 0
    (a footprint with alpha 255, 0, 0, 0 gives 255, not 64): ours does the same."""
    layout = make_layout(256, 256, tile=128, **{"bands": 1, **DOWNSAMPLE_CASES[case]})
    data = sample(layout, seed=3)
    reference = gdal_cog(tmp_path / "gdal.tif", data, UTM, UTM_TRANSFORM, nodata=layout.nodata,
                         rgb=layout.photometric == "rgb", alpha=layout.alpha, blocksize=128)
    assert np.array_equal(downsample(layout, data), read_level(reference, 1), equal_nan=True)


def test_an_opaque_pixel_keeps_its_colour_and_opacity_in_the_overview():
    """Alpha 255, 0, 0, 0 in a footprint: colour of the opaque pixel, alpha 255 (GDAL's rule; a plain mean of
    alpha would give 64, a faded pixel with the transparent pixels' colour mixed in)."""
    layout = make_layout(2, 2, bands=4, dtype="uint8", photometric="rgb", alpha=True)
    footprint = np.array([[[10, 0], [0, 0]], [[20, 99], [99, 99]], [[30, 99], [99, 99]], [[255, 0], [0, 0]]], np.uint8)
    assert downsample(layout, footprint)[:, 0, 0].tolist() == [10, 20, 30, 255]
    footprint[3] = [[255, 128], [1, 0]]
    assert downsample(layout, footprint)[:, 0, 0].tolist() == [3, 73, 76, 128]  # e.g. (30 + 99 + 99) / 3


def reference_downsample(layout: CogLayout, data: np.ndarray) -> np.ndarray:
    """Pixel by pixel, with exact arithmetic: the mean of each footprint's valid values."""
    bands, height, width = data.shape
    out = np.empty((bands, (height + 1) // 2, (width + 1) // 2), data.dtype)
    for row in range(out.shape[1]):
        for col in range(out.shape[2]):
            footprint = data[:, 2 * row:2 * row + 2, 2 * col:2 * col + 2].reshape(bands, -1)
            for band in range(bands):
                values = [value for index, value in enumerate(footprint[band])
                          if not np.isnan(value) and value != layout.nodata
                          and (not layout.alpha or footprint[-1, index] > 0)]
                if not values:
                    out[band, row, col] = layout.fill_value
                elif layout.dtype == "float32":
                    out[band, row, col] = math.fsum(map(float, values)) / len(values)
                else:
                    out[band, row, col] = math.floor(Fraction(sum(map(int, values)), len(values)) + Fraction(1, 2))
    return out


REFERENCE_KINDS = {
    "float32-nan": ({"nodata": NAN}, st.one_of(st.just(NAN), st.floats(0, 1, width=32))),
    "float32-no-nodata": ({"bands": 2}, st.one_of(st.just(NAN), st.floats(-1e6, 1e6, width=32))),
    "uint8-no-nodata": ({"dtype": "uint8", "bands": 3}, st.integers(0, 255)),
    "uint16-nodata": ({"dtype": "uint16", "nodata": 5}, st.one_of(st.integers(0, 6), st.integers(0, 65535))),
    "uint8-gray-alpha": ({"dtype": "uint8", "bands": 2, "alpha": True}, st.one_of(st.just(0), st.integers(0, 255))),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_downsample_is_the_mean_of_valid_footprint_pixels(data):
    kind = data.draw(st.sampled_from(sorted(REFERENCE_KINDS)))
    options, elements = REFERENCE_KINDS[kind]
    height, width = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    layout = make_layout(width, height, **{"bands": 1, **options})
    image = data.draw(hnp.arrays(np.dtype(layout.dtype), (layout.bands, height, width), elements=elements))
    got, expected = downsample(layout, image), reference_downsample(layout, image)
    assert got.dtype == image.dtype and got.shape == expected.shape
    if layout.dtype == "float32":
        np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)
    else:
        assert np.array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_pyramids_of_blocks_aligned_on_even_boundaries_assemble_the_pyramid_of_the_mosaic(data):
    """Cut an image on multiples of 2**levels; each block's own pyramid, placed at its position in every level,
    equals the pyramid of the whole image, exactly: workers can build overviews of their blocks alone."""
    kind = data.draw(st.sampled_from(["float32-nan", "rgba"]))
    options = {"nodata": NAN} if kind == "float32-nan" else {"bands": 4, "dtype": "uint8", "photometric": "rgb",
                                                             "alpha": True}
    levels = data.draw(st.integers(1, 3))
    step = 2 ** levels
    height, width = data.draw(st.integers(1, 60)), data.draw(st.integers(1, 60))
    cuts = [sorted(set(data.draw(st.lists(st.integers(1, max(1, (size - 1) // step)), max_size=3)))) for size in
            (height, width)]
    row_edges, col_edges = ([0] + [step * cut for cut in cut_list if step * cut < size] + [size]
                            for cut_list, size in zip(cuts, (height, width), strict=True))
    layout = make_layout(width, height, **{"bands": 1, **options})
    image = sample(layout, seed=data.draw(st.integers(0, 2**16)))
    whole = [image]
    for _ in range(levels):
        whole.append(downsample(layout, whole[-1]))
    assembled = [np.zeros_like(level) for level in whole]
    for top, bottom in itertools.pairwise(row_edges):
        for left, right in itertools.pairwise(col_edges):
            block = image[:, top:bottom, left:right]
            for level in range(levels + 1):
                assembled[level][:, top >> level:(top >> level) + block.shape[1],
                                 left >> level:(left >> level) + block.shape[2]] = block
                if level < levels:
                    block = downsample(layout, block)
    for level in range(levels + 1):
        assert np.array_equal(assembled[level], whole[level], equal_nan=True), f"level {level}"


# ---- the file: layout, fragments, atomic writes ---------------------------------------------------------------

def test_tiles_follow_the_ifds_smallest_overview_first_each_between_leader_and_trailer(tmp_path):
    layout = make_layout(300, 200, bands=2, tile=32, predictor=3, nodata=NAN)
    write_from_data(tmp_path / "ours.tif", layout, sample(layout))
    raw = (tmp_path / "ours.tif").read_bytes()
    assert raw[8:8 + len(GHOST_AREA)] == GHOST_AREA and struct.unpack_from("<I", raw, 4) == (192,)
    with tifffile.TiffFile(tmp_path / "ours.tif") as tif:
        pages = list(tif.pages)
        assert [page.shape[:2] for page in pages] == list(layout.levels)
        assert [page.tags.get(254).value if 254 in page.tags else 0 for page in pages] == [0] + [1] * (len(pages) - 1)
        ifd_end = max(page.offset for page in pages)
        file_order = [(offset, size) for page in reversed(pages) for offset, size in
                      zip(page.dataoffsets, page.databytecounts, strict=True)]
    assert file_order[0][0] > ifd_end
    position = file_order[0][0] - 4
    for offset, size in file_order:
        assert offset == position + 4, "tiles are contiguous, in file order"
        assert struct.unpack_from("<I", raw, offset - 4) == (size,)
        assert raw[offset + size:offset + size + 4] == raw[offset + size - 4:offset + size]
        position = offset + size + 4
    assert position == len(raw)


def test_trailer_of_a_tile_under_four_bytes_is_left_aligned_and_zero_padded(tmp_path):
    layout = make_layout(10, 10, tile=16)
    write_cog(tmp_path / "tiny.tif", layout, lambda level, row, col: b"ab")
    raw = (tmp_path / "tiny.tif").read_bytes()
    assert raw.endswith(struct.pack("<I", 2) + b"ab" + b"ab\0\0")


@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "user-space-copy"])
def test_fragment_files_give_the_same_file_as_bytes(tmp_path, monkeypatch, kernel_copy):
    layout = make_layout(200, 150, bands=4, dtype="uint8", photometric="rgb", alpha=True, tile=32)
    levels = write_from_data(tmp_path / "from-bytes.tif", layout, sample(layout))
    fragments = tmp_path / "fragments"
    fragments.mkdir()
    for (level, row, col), encoded in encoded_tiles(layout, levels).items():
        (fragments / f"{level}-{row}-{col}.bin").write_bytes(encoded)
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    write_cog(tmp_path / "from-files.tif", layout, lambda level, row, col: fragments / f"{level}-{row}-{col}.bin")
    assert (tmp_path / "from-files.tif").read_bytes() == (tmp_path / "from-bytes.tif").read_bytes()


class TileSourceFailed(Exception):
    pass


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_a_failing_tile_source_leaves_no_file_and_no_temporary(tmp_path, existing):
    layout = make_layout(100, 100, tile=16)
    tiles = encoded_tiles(layout, pyramid(layout, sample(layout)))
    calls = []

    def failing(level, row, col):
        calls.append((level, row, col))
        if len(calls) == 5:
            raise TileSourceFailed("fragment missing")
        return tiles[level, row, col]

    target = tmp_path / "map.tif"
    if existing:
        target.write_bytes(b"previous complete file")
    with pytest.raises(TileSourceFailed):
        write_cog(target, layout, failing)
    assert sorted(path.name for path in tmp_path.iterdir()) == (["map.tif"] if existing else [])
    if existing:
        assert target.read_bytes() == b"previous complete file"
    assert calls[:2] == [(3, 0, 0), (2, 0, 0)], "smallest overview first"


def test_an_empty_tile_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="1 byte to 4 GiB"):
        write_cog(tmp_path / "map.tif", make_layout(10, 10, tile=16), lambda level, row, col: b"")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("width", "height", "bands", "dtype", "expected"), [
    (4096, 4096, 1, "float32", False),
    (30000, 30000, 1, "float32", True),  # 3.4 GiB of level 0 plus overviews and compressor headroom
    (32000, 32000, 4, "uint8", True),
    (20000, 20000, 4, "uint8", False),
])
def test_bigtiff_is_chosen_when_the_file_could_pass_4_gib(width, height, bands, dtype, expected):
    layout = make_layout(width, height, bands=bands, dtype=dtype,
                         **({"photometric": "rgb", "alpha": True} if bands == 4 else {}))
    assert _could_exceed_classic(layout) is expected


def test_the_module_does_not_import_torch():
    code = "import sys, geosal.raster.cog_tiles; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(autouse=True)
def _quiet_identity_transforms():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield
