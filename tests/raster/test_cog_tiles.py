"""COGs assembled from separately encoded tiles (geosal.raster.cog_tiles), checked with real GDAL-written and
GDAL-read files: byte for byte against GDAL's COG driver, values, masks and georeferencing read back by rasterio
and rioxarray, rio-cogeo's validator, JPEG tiles against GDAL's own JPEG encoding of the same pixels, and the
pyramid arithmetic against independent computations."""

from __future__ import annotations

import io
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
import rioxarray
import tifffile
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning
from rio_cogeo.cogeo import cog_validate

from geosal.raster import cog_tiles
from geosal.raster.cog_tiles import (
    GHOST_AREA,
    MASKED_GHOST_AREA,
    CogLayout,
    _could_exceed_classic,
    downsample,
    encode_tile,
    join_masked_tile,
    write_cog,
)

SCENES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scenes"
UTM = CRS.from_epsg(32616)
UTM_TRANSFORM = (733601.0, 0.5, 0.0, 3725139.0, 0.0, -0.5)  # GDAL order
NAN = float("nan")


def make_layout(width: int, height: int, bands: int = 1, dtype: str = "float32", **options) -> CogLayout:
    options = {"crs_wkt": UTM.to_wkt(), "transform": UTM_TRANSFORM, **options}
    return CogLayout(width=width, height=height, bands=bands, dtype=dtype, **options)


def sample(layout: CogLayout, seed: int = 0) -> np.ndarray:
    """Random ``[bands, height, width]`` data of the layout's dtype; NaN holes for NaN nodata, nodata pixels for
    integer nodata, transparent pixels for alpha or a mask."""
    rng = np.random.default_rng(seed)
    shape = (layout.bands, layout.height, layout.width)
    if layout.dtype == "float32":
        data = rng.random(shape).astype(np.float32)
    else:
        data = rng.integers(0, np.iinfo(layout.dtype).max, shape, endpoint=True).astype(layout.dtype)
    holes = rng.random(shape[1:]) < 0.2
    if layout.nodata is not None:
        data[:, holes] = layout.nodata
    if layout.alpha or layout.mask:
        data[-1, holes] = 0
    return data


def smooth_rgba(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A LOVI-like ``[4, height, width]`` uint8 RGBA image: smooth colours, alpha 0 beyond a tilted edge and in a
    disc, 255 elsewhere; the colour under alpha 0 is kept (it is not black)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width].astype(np.float64)
    phases = rng.random(3) * 2 * np.pi
    rgb = np.stack([127.5 + 120 * np.sin(rows / 23 + cols / 37 + phase) * np.cos(cols / 29 - phase)
                    for phase in phases])
    outside = (rows + 0.4 * cols > 1.05 * height) | ((rows - height / 3) ** 2 + (cols - width / 4) ** 2 < (height / 8) ** 2)
    alpha = np.where(outside, 0, 255)
    return np.concatenate([rgb, alpha[None]]).round().astype(np.uint8)


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
             rgb: bool = False, alpha: bool = False, mask: bool = False, scales: tuple[float, ...] | None = None,
             offsets: tuple[float, ...] | None = None, descriptions: tuple[str | None, ...] | None = None,
             **options) -> Path:
    """``data`` written as a COG by GDAL's COG driver (from a plain GeoTIFF beside it), averaged overviews.
    ``alpha``: the last band is an alpha band of the source; ``mask``: it is the source's internal mask."""
    bands = data[:-1] if mask else data
    profile = {"driver": "GTiff", "count": bands.shape[0], "height": data.shape[1], "width": data.shape[2],
               "dtype": data.dtype, "crs": crs, "transform": Affine.from_gdal(*transform), "nodata": nodata}
    if rgb:
        profile.update(photometric="RGB", alpha="YES" if alpha else "NO")
    source = path.with_suffix(".source.tif")
    with rasterio.open(source, "w", **profile) as dataset:
        dataset.write(bands)
        if mask:
            dataset.write_mask(data[-1])
        if scales is not None:
            dataset.scales = scales
        if offsets is not None:
            dataset.offsets = offsets
        if descriptions is not None:
            dataset.descriptions = descriptions
    rasterio.shutil.copy(source, path, driver="COG", overview_resampling="average", **options)
    return path


def gdal_cog_of_layout(path: Path, layout: CogLayout, data: np.ndarray, **options) -> Path:
    """``data`` (``[layout.bands, h, w]``) written by GDAL's COG driver with the layout's tiles, georeferencing,
    nodata, scales, offsets and descriptions. A masked JPEG layout's data goes in as RGBA (the driver makes the alpha band its
    mask); a masked layout with another codec gets the alpha as the source's mask (which the driver keeps)."""
    jpeg = layout.compression == "jpeg"
    if jpeg:
        options = {"compress": "JPEG", "quality": layout.compression_level or 90, **options}
    return gdal_cog(path, data, CRS.from_wkt(layout.crs_wkt), layout.transform, nodata=layout.nodata,
                    rgb=layout.photometric == "rgb", alpha=layout.alpha or (layout.mask and jpeg),
                    mask=layout.mask and not jpeg, scales=layout.scales, offsets=layout.offsets,
                    descriptions=layout.descriptions, blocksize=layout.tile, **options)


def stored_tiles(path: Path) -> list[list[bytes]]:
    """The raw (still encoded) tiles of every IFD, read with tifffile."""
    raw = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        return [[raw[offset:offset + size] for offset, size in zip(page.dataoffsets, page.databytecounts, strict=True)]
                for page in tif.pages]


def gdal_tile_source(layout: CogLayout, path: Path):
    """The tiles GDAL stored in ``path``, as :func:`write_cog`'s ``tile_source`` for ``layout``: GDAL's raw tiles,
    imagery and mask joined into one fragment for a masked layout (IFDs: level 0, its mask, overviews, masks)."""
    pages = stored_tiles(path)
    count = len(layout.levels)
    assert len(pages) == count * (2 if layout.mask else 1)
    imagery, masks = ([pages[0]] + pages[2:count + 1], [pages[1]] + pages[count + 1:]) if layout.mask else (pages, None)

    def source(level: int, row: int, col: int) -> bytes:
        index = row * layout.tiles(level)[1] + col
        if masks is None:
            return imagery[level][index]
        return join_masked_tile(imagery[level][index], masks[level][index])

    return source


def read_level(path: Path, level: int) -> np.ndarray:
    with rasterio.open(path, overview_level=level - 1 if level else None) as dataset:
        return dataset.read()


def read_level_and_mask(path: Path, level: int) -> tuple[np.ndarray, np.ndarray]:
    with rasterio.open(path, overview_level=level - 1 if level else None) as dataset:
        return dataset.read(), dataset.dataset_mask()


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
    ({"compression": "jpeg", "bands": 3, "dtype": "uint16", "photometric": "rgb"}, "jpeg stores exactly 3 uint8"),
    ({"compression": "jpeg", "bands": 1, "dtype": "uint8"}, "jpeg stores exactly 3 uint8"),
    ({"compression": "jpeg", "bands": 4, "dtype": "uint8", "photometric": "rgb", "alpha": True}, "add mask=True"),
    ({"compression": "jpeg", "bands": 3, "dtype": "uint8", "photometric": "rgb", "predictor": 2}, "no predictor"),
    ({"compression": "jpeg", "bands": 3, "dtype": "uint8", "photometric": "rgb", "compression_level": 23},
     "compression_level"),
    ({"compression": "jpeg", "bands": 3, "dtype": "uint8", "photometric": "rgb", "compression_level": 101},
     "compression_level"),
    ({"mask": True, "alpha": True, "bands": 4, "dtype": "uint8", "photometric": "rgb"}, "choose one"),
    ({"mask": True, "bands": 2}, "uint8"),
    ({"mask": True, "bands": 2, "dtype": "uint8", "nodata": 0}, "nodata"),
    ({"mask": True, "bands": 3, "dtype": "uint8", "photometric": "rgb"}, "too few"),
    ({"mask": True, "bands": 4, "dtype": "uint8", "photometric": "rgb", "scales": (1, 1, 1, 1)}, "3 stored bands"),
])
def test_layout_rejects_what_a_cog_cannot_hold(options, message):
    options = {"bands": 1, **options}
    bands = options.pop("bands")
    with pytest.raises(ValueError, match=message):
        make_layout(64, 64, bands=bands, **options)


# ---- byte for byte what GDAL's COG driver writes ------------------------------------------------------------

RGBA_MASK = {"bands": 4, "dtype": "uint8", "photometric": "rgb", "mask": True}
GDAL_CASES = {
    "float32-nan-deflate-predictor3": (
        {"dtype": "float32", "nodata": NAN, "predictor": 3}, {"compress": "DEFLATE", "predictor": "YES"}),
    "rgba-jpeg-quality90-mask": ({**RGBA_MASK, "compression": "jpeg"}, {}),  # lovi.tif
    "rgba-jpeg-quality24-mask-bigtiff": (
        {**RGBA_MASK, "compression": "jpeg", "compression_level": 24, "bigtiff": True}, {"bigtiff": "YES"}),
    "rgb-jpeg-quality100": ({"bands": 3, "dtype": "uint8", "photometric": "rgb", "compression": "jpeg",
                             "compression_level": 100}, {}),
    "rgb-deflate-predictor2-mask": ({**RGBA_MASK, "predictor": 2}, {"compress": "DEFLATE", "predictor": "YES"}),
    "gray-zstd-mask": ({"bands": 2, "dtype": "uint8", "mask": True, "compression": "zstd"}, {"compress": "ZSTD"}),
    "uint8-scale-offset-nodata": (  # combined.tif
        {"dtype": "uint8", "nodata": 255, "scales": (1 / 254,), "offsets": (0.0,), "predictor": 2},
        {"compress": "DEFLATE", "predictor": "YES"}),
    "uint16-scale-offset-nodata-description": (
        {"dtype": "uint16", "nodata": 65535, "scales": (0.1,), "offsets": (-3.0,), "descriptions": ("a <b>",),
         "compression": "zstd"}, {"compress": "ZSTD"}),
    # tiles under 6553 uncompressed bytes: libtiff writes TileByteCounts as SHORT (here the masks' and the grey's;
    # GDAL keeps the tile size on overviews for powers of 2 from 64 only)
    "gray-deflate-mask-64px-tiles": ({"bands": 2, "dtype": "uint8", "mask": True, "size": (384, 256, 64)},
                                     {"compress": "DEFLATE"}),
    "rgba-jpeg-mask-64px-tiles": ({**RGBA_MASK, "compression": "jpeg", "size": (384, 256, 64)}, {}),
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
    tag, the tile arrays, the tile order, leaders and trailers all come out as GDAL writes them; with a mask,
    the mask IFDs and mask tiles too (GDAL makes the mask of RGBA given to JPEG from its alpha band)."""
    ours, theirs = GDAL_CASES[case]
    ours = dict(ours)
    bigtiff = ours.pop("bigtiff", None)
    width, height, tile = ours.pop("size", (768, 1024, 256))
    layout = make_layout(width, height, tile=tile, **{"bands": 1, **ours})
    reference = gdal_cog_of_layout(tmp_path / "gdal.tif", layout, sample(layout), **theirs)
    write_cog(tmp_path / "ours.tif", layout, gdal_tile_source(layout, reference), bigtiff=bigtiff)
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
    "uint8-rgb-mask-predictor2-deflate": (201, 97, 32, {**RGBA_MASK, "predictor": 2}),
    "uint8-gray-mask-zstd-bigtiff": (70, 90, 16, {"bands": 2, "dtype": "uint8", "mask": True,
                                                  "compression": "zstd", "bigtiff": True}),
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
        pixels, mask = read_level_and_mask(path, level)
        if layout.mask:
            expected, alpha = expected[:-1], expected[-1]
            assert np.array_equal(mask, np.where(alpha > 0, 255, 0)), f"mask of level {level}"
        assert np.array_equal(pixels, expected, equal_nan=True), f"level {level}"
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


def test_internal_mask_is_the_datasets_per_dataset_mask_and_not_a_band(tmp_path):
    layout = make_layout(300, 200, tile=64, **RGBA_MASK)
    levels = write_from_data(tmp_path / "masked.tif", layout, sample(layout))
    with rasterio.open(tmp_path / "masked.tif") as dataset:
        assert dataset.count == 3
        assert dataset.colorinterp == (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
        assert dataset.mask_flag_enums == ([MaskFlags.per_dataset],) * 3
        assert np.array_equal(dataset.read(2, masked=True).mask, levels[0][3] == 0)
    assert (tmp_path / "masked.tif").read_bytes()[8:8 + len(MASKED_GHOST_AREA)] == MASKED_GHOST_AREA


SCALED_INTEGER_CASES = {  # combined.tif: [0, 1] as 0 ... 254, nodata 255
    "uint8-1/254-nodata-255": ("uint8", 1 / 254, 0.0, 255),
    "uint16-1/65534-nodata-65535": ("uint16", 1 / 65534, 0.0, 65535),
    "uint16-offset-nodata-0": ("uint16", 0.5, -10.0, 0),
}


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # affine's, from inside rioxarray
@pytest.mark.parametrize("case", SCALED_INTEGER_CASES)
def test_scaled_integer_maps_read_back_as_floats_with_nan_at_nodata(tmp_path, case):
    """rasterio reads the scale, offset and nodata; rioxarray with ``mask_and_scale=True`` gives float32 values
    ``stored * scale + offset`` (here in [0, 1] for the first two) with NaN exactly at nodata."""
    dtype, scale, offset, nodata = SCALED_INTEGER_CASES[case]
    layout = make_layout(150, 90, dtype=dtype, nodata=nodata, scales=(scale,), offsets=(offset,), tile=64)
    stored = np.random.default_rng(4).integers(0, np.iinfo(dtype).max, (1, 90, 150), endpoint=True).astype(dtype)
    stored[stored == nodata] = 1
    stored[0, 10:30, 40:100] = nodata
    write_from_data(tmp_path / "scaled.tif", layout, stored)
    with rasterio.open(tmp_path / "scaled.tif") as dataset:
        assert (dataset.scales, dataset.offsets, dataset.nodata) == ((scale,), (offset,), nodata)
    values = rioxarray.open_rasterio(tmp_path / "scaled.tif", mask_and_scale=True).values
    assert values.dtype == np.float32
    assert np.array_equal(np.isnan(values), stored == nodata)
    expected = stored.astype(np.float64) * scale + offset
    np.testing.assert_allclose(values[stored != nodata], expected[stored != nodata], rtol=1e-6, atol=1e-6)
    if offset == 0.0:
        assert 0.0 <= np.nanmin(values) and np.nanmax(values) <= 1.0


# ---- JPEG and masks against GDAL's own encoding ---------------------------------------------------------------

def test_jpeg_with_mask_decodes_like_gdals_jpeg_of_the_same_rgba_at_every_level(tmp_path):
    """A LOVI-like RGBA map as JPEG (quality 90) with a mask, ours and GDAL's COG driver's from the same pixels
    (sizes where both pyramids agree): masks equal the alpha of every level exactly; the decoded colours' error
    against the source pyramid is GDAL's own within 10 % (mean) and 25 % (max; the largest errors are where
    colours meet the black that fills masked overview pixels, in both files); the file validates."""
    layout = make_layout(384, 256, tile=128, compression="jpeg", **RGBA_MASK)
    data = smooth_rgba(384, 256)
    levels = write_from_data(tmp_path / "ours.tif", layout, data)
    reference = gdal_cog_of_layout(tmp_path / "gdal.tif", layout, data)
    for level, expected in enumerate(levels):
        ours, our_mask = read_level_and_mask(tmp_path / "ours.tif", level)
        theirs, their_mask = read_level_and_mask(reference, level)
        valid = expected[3] > 0
        assert np.array_equal(our_mask, np.where(valid, 255, 0)) and np.array_equal(their_mask, our_mask)
        our_error = np.abs(ours.astype(int) - expected[:3])[:, valid]
        their_error = np.abs(theirs.astype(int) - expected[:3])[:, valid]
        assert our_error.mean() <= 1.1 * their_error.mean(), f"level {level}"
        assert our_error.max() <= 1.25 * their_error.max(), f"level {level}"
        assert our_error.mean() < 3, f"level {level}"
    assert (tmp_path / "ours.tif").stat().st_size <= 1.05 * reference.stat().st_size
    assert_valid_cog(tmp_path / "ours.tif")


def test_mask_tiles_are_gdals_byte_for_byte_with_libdeflate(tmp_path):
    """GDAL's wheels compress masks with libdeflate (ZLEVEL 6, run by libtiff at libdeflate's level 7); so does
    encode_tile where the ``deflate`` package is installed: the mask tiles come out identical."""
    pytest.importorskip("deflate")
    layout = make_layout(384, 256, tile=128, compression="jpeg", **RGBA_MASK)
    data = smooth_rgba(384, 256)
    ours = encoded_tiles(layout, pyramid(layout, data))
    theirs = gdal_tile_source(layout, gdal_cog_of_layout(tmp_path / "gdal.tif", layout, data))
    for (level, row, col), fragment in ours.items():
        assert split(fragment)[1] == split(theirs(level, row, col))[1], (level, row, col)


@pytest.mark.parametrize("quality", [24, 50, 75, 85, 90, 100])
def test_jpeg_tables_are_gdals_at_every_quality(tmp_path, quality):
    layout = make_layout(64, 64, bands=3, dtype="uint8", photometric="rgb", compression="jpeg",
                         compression_level=quality, tile=64)
    data = smooth_rgba(64, 64)[:3]
    write_from_data(tmp_path / "ours.tif", layout, data)
    reference = gdal_cog_of_layout(tmp_path / "gdal.tif", layout, data)
    with tifffile.TiffFile(tmp_path / "ours.tif") as ours, tifffile.TiffFile(reference) as theirs:
        assert ours.pages[0].tags[347].value == theirs.pages[0].tags[347].value


# ---- tile encoding --------------------------------------------------------------------------------------------

def split(fragment: bytes) -> tuple[bytes, bytes]:
    """A masked tile's fragment as (imagery tile, mask tile), by its documented ``<II`` index."""
    imagery, mask = struct.unpack_from("<II", fragment)
    assert len(fragment) == 8 + imagery + mask
    return fragment[8:8 + imagery], fragment[8 + imagery:]


def jpeg_markers(stream: bytes) -> list[int]:
    """The markers of a JPEG stream up to and including SOS."""
    markers, position = [stream[1]], 2
    while stream[position + 1] != 0xDA:
        markers.append(stream[position + 1])
        position += 2 + struct.unpack_from(">H", stream, position + 2)[0]
    return markers + [0xDA]


def decode_jpeg_tile(layout: CogLayout, tile: bytes) -> np.ndarray:
    """An abbreviated JPEG tile decoded with the file's tables (as libtiff does): ``[tile, tile, 3]``."""
    tables = cog_tiles._jpeg_tables(layout.compression_level or 90)
    return np.asarray(Image.open(io.BytesIO(tables[:-2] + tile[2:])).convert("RGB")).astype(int)


def test_jpeg_tiles_are_abbreviated_ycbcr_420_streams_without_tables():
    layout = make_layout(64, 64, tile=64, compression="jpeg", **RGBA_MASK)
    imagery, _ = split(encode_tile(layout, smooth_rgba(64, 64)))
    assert jpeg_markers(imagery) == [0xD8, 0xC0, 0xC4, 0xC4, 0xC4, 0xC4, 0xDA]  # SOI SOF0 4 x DHT SOS: no DQT, APP0
    assert imagery.endswith(b"\xff\xd9")
    height, width, components = struct.unpack_from(">HHB", imagery, 7)
    assert (height, width, components) == (64, 64, 3)
    assert imagery[12:21] == bytes([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1])  # Y 2x2 table 0; Cb, Cr 1x1 table 1
    with pytest.raises(OSError):
        Image.open(io.BytesIO(imagery)).load()  # no quantisation tables: undecodable without JPEGTables


def test_jpeg_edge_tiles_repeat_the_last_column_and_row_and_keep_colour_under_the_mask():
    """The 24 x 40 px corner of a 64 px tile: padding decodes to the nearest edge pixel (GDAL's JPEG padding),
    not to 0; pixels under alpha 0 keep their colour (as GDAL keeps the source's), they are not blacked out."""
    layout = make_layout(104, 88, tile=64, compression="jpeg", **RGBA_MASK)
    data = smooth_rgba(104, 88, seed=2)
    data[3, :, 90:] = 0
    top, left, height, width = layout.tile_window(0, 1, 1)
    assert (height, width) == (24, 40)
    corner = data[:, top:, left:]
    imagery, mask = split(encode_tile(layout, corner))
    decoded = decode_jpeg_tile(layout, imagery)
    padded = np.pad(corner[:3].transpose(1, 2, 0), ((0, 40), (0, 24), (0, 0)), mode="edge").astype(int)
    assert np.abs(decoded - padded).mean() < 2 and np.abs(decoded - padded).max() < 16
    masked = corner[3] == 0
    assert masked.any() and np.abs(decoded[:24, :40][masked] - corner[:3].transpose(1, 2, 0)[masked]).mean() < 2
    bits = np.unpackbits(np.frombuffer(zlib.decompress(mask), np.uint8)).reshape(64, 64)
    expected_bits = np.zeros((64, 64), np.uint8)
    expected_bits[:24, :40] = corner[3] > 0
    assert np.array_equal(bits, expected_bits)


def test_any_nonzero_alpha_is_valid_in_the_mask():
    """GDAL's mask from an alpha band: 0 invalid, 1 ... 255 valid."""
    layout = make_layout(16, 16, bands=2, dtype="uint8", mask=True, tile=16)
    data = np.zeros((2, 1, 6), np.uint8)
    data[1, 0] = [0, 1, 127, 128, 254, 255]
    _, mask = split(encode_tile(layout, data))
    assert np.unpackbits(np.frombuffer(zlib.decompress(mask), np.uint8))[:8].tolist() == [0, 1, 1, 1, 1, 1, 0, 0]


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
    "uint8-rgb-mask": RGBA_MASK,
}


@pytest.mark.parametrize("case", DOWNSAMPLE_CASES)
def test_downsample_equals_gdal_average_overview_on_even_sizes(tmp_path, case):
    """GDAL's ``average`` with an alpha band averages colour and alpha over the pixels with alpha > 0
    (a footprint with alpha 255, 0, 0, 0 gives 255, not 64): ours does the same. With a mask (GDAL's COG of an
    RGB source with an internal mask, lossless), colours alike, and the overview's mask is valid where any of
    its footprint is."""
    layout = make_layout(256, 256, tile=128, **{"bands": 1, **DOWNSAMPLE_CASES[case]})
    data = sample(layout, seed=3)
    reference = gdal_cog_of_layout(tmp_path / "gdal.tif", layout, data)
    ours = downsample(layout, data)
    theirs, their_mask = read_level_and_mask(reference, 1)
    if layout.mask:
        ours, alpha = ours[:-1], ours[-1]
        assert np.array_equal(their_mask, np.where(alpha > 0, 255, 0))
    assert np.array_equal(ours, theirs, equal_nan=True)


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
                          and (not (layout.alpha or layout.mask) or footprint[-1, index] > 0)]
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
    "uint8-rgba-mask": (RGBA_MASK, st.one_of(st.just(0), st.integers(0, 255))),
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


@pytest.mark.parametrize("masked", [False, True], ids=["rgba", "jpeg-with-mask"])
@pytest.mark.parametrize("kernel_copy", [True, False], ids=["copy_file_range", "user-space-copy"])
def test_fragment_files_give_the_same_file_as_bytes(tmp_path, monkeypatch, kernel_copy, masked):
    """One file per tile; with a mask it holds the imagery and the mask tile, which write_cog copies apart."""
    options = {**RGBA_MASK, "compression": "jpeg"} if masked else {"bands": 4, "dtype": "uint8",
                                                                   "photometric": "rgb", "alpha": True}
    layout = make_layout(200, 150, tile=32, **options)
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
    with pytest.raises(ValueError, match="at least 1 byte"):
        join_masked_tile(b"imagery", b"")


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_a_tile_without_its_mask_is_refused_for_a_masked_layout_and_leaves_nothing(tmp_path, as_file):
    """Fragments encoded for a layout without a mask (or cut short) do not pass for imagery + mask."""
    masked = make_layout(40, 40, tile=64, **RGBA_MASK)
    plain = encode_tile(make_layout(40, 40, bands=3, dtype="uint8", photometric="rgb", tile=64),
                        sample(masked)[:3])
    truncated = encode_tile(masked, sample(masked))[:-1]
    for fragment in (plain, truncated, b"abc"):
        (tmp_path / "fragment").write_bytes(fragment)
        tile = tmp_path / "fragment" if as_file else fragment
        with pytest.raises(ValueError, match="masked tile"):
            write_cog(tmp_path / "map.tif", masked, lambda level, row, col, tile=tile: tile)
        assert sorted(path.name for path in tmp_path.iterdir()) == ["fragment"]


def test_join_masked_tile_is_an_index_then_the_two_tiles():
    assert join_masked_tile(b"JPEG", b"mask!") == struct.pack("<II", 4, 5) + b"JPEG" + b"mask!"


@pytest.mark.parametrize(("width", "height", "bands", "dtype", "expected"), [
    (4096, 4096, 1, "float32", False),
    (30000, 30000, 1, "float32", True),  # 3.4 GiB of level 0 plus overviews and compressor headroom
    (32000, 32000, 4, "uint8", True),
    (20000, 20000, 4, "uint8", False),
    (32000, 32000, "jpeg-mask", "uint8", True),  # RGB at 3 bytes a pixel (JPEG stays far under) plus the masks
    (30000, 30000, "jpeg-mask", "uint8", False),
])
def test_bigtiff_is_chosen_when_the_file_could_pass_4_gib(width, height, bands, dtype, expected):
    options = {"compression": "jpeg", **RGBA_MASK} if bands == "jpeg-mask" else \
        {"bands": bands, **({"photometric": "rgb", "alpha": True} if bands == 4 else {})}
    layout = make_layout(width, height, **{"dtype": dtype, **options})
    assert _could_exceed_classic(layout) is expected


def test_the_module_does_not_import_torch():
    code = "import sys, geosal.raster.cog_tiles; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.fixture(autouse=True)
def _quiet_identity_transforms():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield
