"""Every real scene end to end with the shipped model: georeferencing, ranges, nodata."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.enums import Resampling
from rio_cogeo.cogeo import cog_validate

from geosal.config import load_config
from geosal.pipeline import run_scene
from tests.paths import SCENES

SCENE_FILES = sorted(p.name for p in SCENES.glob("*.tif"))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """All scenes processed once, in-process, with the shipped model (small tiles: many blocks)."""
    root = tmp_path_factory.mktemp("scenes")
    config = load_config(overrides={"tiling": {"tile": 256, "halo": 64, "block_tiles": 2}, "compute": {"scheduler": "in-process"}})
    for name in SCENE_FILES:
        run_scene(SCENES / name, root, config, progress=False)
    return root


def expected_grid(scene: Path, output: Path) -> tuple[Affine, tuple[int, int]]:
    with rasterio.open(output / "combined.tif") as combined:
        return combined.transform, combined.shape


def working_grid(attrs: dict) -> tuple[Affine, tuple[int, int]]:
    """The working grid recorded in the store: its transform and shape."""
    grids = attrs["grids"]
    record = grids["working"] if "working" in grids else grids[""]
    return Affine(*record["transform"]), tuple(record["shape"])


@pytest.mark.parametrize("name", SCENE_FILES)
def test_outputs_are_complete_and_georeferenced_like_the_source(outputs, name):
    folder = outputs / Path(name).stem
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["combined.tif", "combined.qml", "lovi.tif", "lovi.qml", "quicklook.jpg", "item.json", "saliency.zarr", "config.yaml"]
    )
    with rasterio.open(SCENES / name) as source, rasterio.open(folder / "combined.tif") as combined:
        assert combined.crs == source.crs
        # the same footprint: the output grid starts at the source's corner and covers its extent, its last
        # row and column reaching past the source's by less than one output pixel
        assert combined.transform.c == pytest.approx(source.transform.c, abs=1e-9 * max(1.0, abs(source.transform.c)))
        assert combined.transform.f == pytest.approx(source.transform.f, abs=1e-9 * max(1.0, abs(source.transform.f)))
        pixel_x, pixel_y = combined.transform.a, -combined.transform.e
        assert 0 <= combined.bounds.right - source.bounds.right < pixel_x * (1 + 1e-9)
        assert 0 <= source.bounds.bottom - combined.bounds.bottom < pixel_y * (1 + 1e-9)
        assert combined.transform.b == 0 and combined.transform.d == 0
        assert combined.dtypes[0] == "uint8" and combined.nodata == 255 and combined.scales[0] == pytest.approx(1 / 254)
        if max(combined.shape) > 512:  # overviews down to one 512 px tile
            assert combined.overviews(1), "COG without overviews"
    for cog in ("combined.tif", "lovi.tif"):
        assert cog_validate(str(folder / cog))[0], f"{cog} is not a valid COG"


@pytest.mark.parametrize("name", SCENE_FILES)
def test_zarr_readable_by_xarray_and_gdal_with_crs_and_transforms(outputs, name):
    folder = outputs / Path(name).stem
    transform, shape = expected_grid(SCENES / name, folder)
    store = folder / "saliency.zarr"
    dataset = xr.open_zarr(store)
    with rasterio.open(SCENES / name) as source:
        crs = source.crs
    assert dataset.combined.rio.crs == crs
    assert dataset.combined.rio.transform().almost_equals(transform, precision=1e-9)
    attrs = dataset.attrs
    working, working_shape = working_grid(attrs)
    assert working.almost_equals(transform * Affine.scale(1 / attrs["output_stride"]), precision=1e-9)
    for scale, stride in zip(sorted(k for k in dataset.data_vars if k.startswith("scale_")), attrs["strides"]):
        scaled = working * Affine.scale(stride)
        assert dataset[scale].rio.transform().almost_equals(scaled, precision=1e-9)
        with rasterio.open(f'ZARR:"{store}":/{scale}') as gdal_view:
            assert gdal_view.crs == crs and gdal_view.transform.almost_equals(scaled, precision=1e-9)
            assert gdal_view.shape == (math.ceil(working_shape[0] / stride), math.ceil(working_shape[1] / stride))
    with rasterio.open(f'ZARR:"{store}":/combined') as gdal_view:
        assert gdal_view.crs == crs and gdal_view.transform.almost_equals(transform, precision=1e-9)
        assert gdal_view.dtypes[0] == "uint16" and gdal_view.nodata == 65535
        assert gdal_view.scales[0] == pytest.approx(1 / 65534)
    assert attrs["model"]["architecture"] == "resnet18" and attrs["statistic"] == "smoe_scale"
    assert len(attrs["scene_statistics"]["mean"]) == len(attrs["layers"]) == 5


@pytest.mark.parametrize("name", SCENE_FILES)
def test_value_ranges_and_nodata_propagation(outputs, name):
    folder = outputs / Path(name).stem
    with rasterio.open(folder / "combined.tif") as combined, rasterio.open(folder / "lovi.tif") as lovi:
        codes = combined.read(1, masked=True)
        values = (codes.astype(np.float32) * combined.scales[0] + combined.offsets[0]).filled(np.nan)
        assert lovi.count == 3 and lovi.compression.name == "jpeg"
        lovi_valid = lovi.dataset_mask() > 0
        shape = combined.shape
    with rasterio.open(SCENES / name) as source:
        source_valid = source.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    finite = np.isfinite(values)
    assert finite.any()
    assert values[finite].min() >= 0 and values[finite].max() <= 1
    assert values[finite].std() > 0.01, "a flat saliency map"
    agreement = (finite == source_valid).mean()
    assert agreement > 0.995, f"nodata mask disagrees with the source's on {100 * (1 - agreement):.2f}% of pixels"
    assert np.array_equal(lovi_valid, finite)  # LOVI's mask is the combined map's nodata


@pytest.mark.parametrize("name", SCENE_FILES)
def test_the_store_and_the_cog_hold_the_same_map(outputs, name):
    """xarray decodes the store's 16-bit codes to [0, 1] with NaN; the COG's 8-bit codes agree within half a
    step, and rioxarray decodes them too."""
    folder = outputs / Path(name).stem
    stored = xr.open_zarr(folder / "saliency.zarr").combined.values
    cog = rioxarray.open_rasterio(folder / "combined.tif", mask_and_scale=True).values[0]
    assert cog.dtype == np.float32 and np.array_equal(np.isnan(stored), np.isnan(cog))
    finite = np.isfinite(stored)
    assert np.abs(stored[finite] - cog[finite]).max() <= 0.5 / 254 + 0.5 / 65534 + 1e-6
    assert np.all(np.abs(stored[finite] * 65534 - np.round(stored[finite] * 65534)) < 1e-3)  # on the 16-bit grid


def test_stac_item_links_outputs_and_source(outputs):
    item = json.loads((outputs / "manila_oam_10cm" / "item.json").read_text())
    assert {"combined", "lovi", "zarr", "quicklook"} <= set(item["assets"])
    # the model that explains the scene, as the STAC Machine Learning Model extension describes models
    assert any("/mlm/" in url for url in item["stac_extensions"])
    properties = item["properties"]
    assert properties["mlm:architecture"] == "torchvision:resnet18" and properties["mlm:tasks"] == ["classification"]
    assert len(properties["mlm:output"][0]["classification:classes"]) == 21
    assert properties["geosal:weights_sha256"] and len(properties["mlm:input"][0]["value_scaling"]) == 3
    assert any(link["rel"] == "derived_from" and link["href"].endswith("manila_oam_10cm.tif") for link in item["links"])
    assert item["properties"]["proj:code"] == "EPSG:3395"
    west, south, east, north = item["bbox"]
    assert 120.9 < west < east < 121.1 and 14.5 < south < north < 14.7  # Manila


def test_resampling_and_small_scene_notes(outputs):
    manila = xr.open_zarr(outputs / "manila_oam_10cm" / "saliency.zarr").attrs
    assert any("resampled" in note for note in manila["notes"])
    assert manila["working_grid"]["width"] == round(2048 * 0.10009765625 / manila["model"]["gsd_m"])  # 0.1 m -> model GSD
    colorado = xr.open_zarr(outputs / "colorado_hro_15cm_small" / "saliency.zarr").attrs
    assert colorado["tile"] < 256
    landsat = xr.open_zarr(outputs / "landsat_rgb_300m_nodata0" / "saliency.zarr").attrs
    assert any("native resolution" in note for note in landsat["notes"])


@pytest.mark.parametrize("name", SCENE_FILES)
def test_preview_is_the_model_input_on_its_own_georeferenced_grid(outputs, name):
    store = outputs / Path(name).stem / "saliency.zarr"
    dataset = xr.open_zarr(store)
    working, _ = working_grid(dataset.attrs)
    stride = dataset.attrs["grids"]["preview"]["transform"][0] / working.a
    transform = working * Affine.scale(round(stride))
    preview = dataset.preview.values
    assert preview.dtype == np.uint8 and preview.shape[0] in (1, 3)
    assert dataset.preview.rio.transform().almost_equals(transform, precision=1e-9)
    with rasterio.open(f'ZARR:"{store}":/preview') as gdal_view:
        assert gdal_view.count == preview.shape[0] and gdal_view.transform.almost_equals(transform, precision=1e-9)
    # an independent rendering of the same ground: GDAL's average of the source bands at the preview's shape
    with rasterio.open(SCENES / name) as source:
        bands = list(range(1, min(3, source.count) + 1)) if preview.shape[0] == 3 else [1]
        reference = source.read(bands, out_shape=(len(bands), *preview.shape[1:]), resampling=Resampling.average)
        valid = source.dataset_mask(out_shape=preview.shape[1:], resampling=Resampling.nearest) > 0
    for ours, theirs in zip(preview, reference):
        correlation = np.corrcoef(ours[valid].astype(float), theirs[valid].astype(float))[0, 1]
        assert correlation > 0.95, f"preview band correlates {correlation:.3f} with the source"
