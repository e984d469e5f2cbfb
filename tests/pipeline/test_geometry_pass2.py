"""Plan geometry, scene statistics and the chunked, global-grid upsampling of pass 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.config import load_config
from geosal.models import ModelSpec
from geosal.pipeline.pass1 import block_mean
from geosal.pipeline.pass2 import SceneStatistics, upsample_normalised
from geosal.pipeline.plan import PlanError, choose_bands, scale_grids, target_gsd
from geosal.raster import inspect_scene
from geosal.saliency.normalize import normal_cdf
from tests.paths import SCENES


@settings(max_examples=60, deadline=None)
@given(
    st.integers(4, 20), st.integers(4, 20), st.sampled_from([2, 4, 8]),
    st.integers(0, 10_000), st.data(),
)
def test_chunked_upsampling_equals_whole_map_interpolation(h, w, stride, seed, data):
    """Any chunk of pass 2 equals the same pixels of F.interpolate on the whole map: no seams by construction."""
    raw = np.random.default_rng(seed).gamma(2.0, 1.0, size=(h, w)).astype(np.float32)
    mean, std = float(raw.mean()), float(raw.std())
    whole = F.interpolate(normal_cdf(torch.from_numpy(raw)[None], mean, std)[None], scale_factor=stride,
                          mode="bilinear", align_corners=False)[0, 0].numpy()
    row = data.draw(st.integers(0, h - 1)) * stride
    col = data.draw(st.integers(0, w - 1)) * stride
    rows, cols = data.draw(st.integers(1, h * stride - row)), data.draw(st.integers(1, w * stride - col))
    map_row, map_col = row // stride - 1, col // stride - 1
    padded = np.full((h + 2, w + 2), np.nan, np.float32)  # what read_region returns outside the array
    padded[1:-1, 1:-1] = raw
    region = padded[map_row + 1 : map_row + 1 + -(-rows // stride) + 2, map_col + 1 : map_col + 1 + -(-cols // stride) + 2]
    up = upsample_normalised(region, stride, mean, std)
    top, left = row - map_row * stride, col - map_col * stride
    np.testing.assert_allclose(up[top : top + rows, left : left + cols], whole[row : row + rows, col : col + cols], atol=2e-6)


def test_nodata_map_pixels_are_ignored_not_smeared():
    raw = np.array([[1.0, np.nan], [1.0, 1.0]], np.float32)
    up = upsample_normalised(raw, 2, mean=0.0, std=1.0)
    footprint = np.zeros((4, 4), bool)
    footprint[:2, 2:] = True  # the output pixels under the nodata map pixel
    assert np.isfinite(up[~footprint]).all()  # valid pixels never pick up NaN from a nodata neighbour
    finite = up[np.isfinite(up)]
    np.testing.assert_allclose(finite, normal_cdf(torch.ones(1, 1, 1), 0.0, 1.0).item(), rtol=1e-6)
    assert np.isnan(upsample_normalised(np.full((2, 2), np.nan, np.float32), 2, 0.0, 1.0)).all()


def test_scene_statistics_reduce_like_numpy():
    rng = np.random.default_rng(0)
    parts = [rng.normal(3, 2, size=n) for n in (10, 0, 250, 37)]
    stats = np.array([[[len(p), p.sum(), np.square(p).sum()]] for p in parts])
    reduced = SceneStatistics.from_blocks(stats)
    values = np.concatenate(parts)
    assert reduced.count == (len(values),)
    assert reduced.mean[0] == pytest.approx(values.mean()) and reduced.std[0] == pytest.approx(values.std())
    assert SceneStatistics.from_blocks(np.zeros((2, 1, 3))).std == (0.0,)


def rgb_spec(**kwargs) -> ModelSpec:
    return ModelSpec(architecture="resnet18", num_classes=3, **kwargs)


def test_band_choice_for_rgbn_pan_and_explicit():
    naip = inspect_scene(SCENES / "naip_rgbn_5m_nodata0.tif")
    bands, note = choose_bands(naip, None, rgb_spec())
    assert bands == (1, 2, 3) and "4-band" in note
    assert choose_bands(naip, [4, 1, 2], rgb_spec())[0] == (4, 1, 2)
    pan = inspect_scene(SCENES / "atlanta_pan_uint16_nodata0.tif")
    bands, note = choose_bands(pan, None, rgb_spec())
    assert bands == (1,) and "replicated" in note
    with pytest.raises(PlanError, match="cannot feed a model with 3 inputs"):
        choose_bands(pan, None, rgb_spec(single_band="error"))
    with pytest.raises(PlanError, match="selects 2 band"):
        choose_bands(naip, [1, 2], rgb_spec())


def test_resampling_decision():
    manila = inspect_scene(SCENES / "manila_oam_10cm.tif")
    landsat = inspect_scene(SCENES / "landsat_rgb_300m_nodata0.tif")
    config = load_config()
    assert target_gsd(manila, rgb_spec(gsd_m=0.4), config)[0] == 0.4
    gsd, note = target_gsd(landsat, rgb_spec(gsd_m=0.4), config)
    assert gsd is None and "native resolution" in note
    assert target_gsd(landsat, rgb_spec(gsd_m=0.4), load_config(overrides={"input": {"resample": "model"}}))[0] == 0.4
    assert target_gsd(manila, rgb_spec(gsd_m=0.4), load_config(overrides={"input": {"resample": "native"}}))[0] is None
    assert target_gsd(manila, rgb_spec(), config)[0] is None  # the model declares no GSD


def test_scale_grids_and_untileable_networks():
    grids = scale_grids(rgb_spec(), load_config(), probe_size=320)
    assert [(g.layer, g.stride, g.name) for g in grids] == [
        ("relu", 2, "scale_1"), ("layer1", 4, "scale_2"), ("layer2", 8, "scale_3"), ("layer3", 16, "scale_4"), ("layer4", 32, "scale_5")
    ]
    with pytest.raises(PlanError, match="exactly 1/stride"):
        scale_grids(ModelSpec(architecture="alexnet", num_classes=3), load_config(), probe_size=320)
    with pytest.raises(PlanError, match="no module named 'layer9'"):
        scale_grids(rgb_spec(), load_config(overrides={"saliency": {"layers": ["layer1", "layer9"]}}), probe_size=320)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 2, 4, 8]), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_block_mean_averages_each_footprint(rows, cols, stride, bands, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (rows * stride, cols * stride, bands), dtype=np.uint8)
    result = block_mean(pixels, stride)
    assert result.shape == (bands, rows, cols) and result.dtype == np.uint8
    for b in range(bands):
        for r in range(rows):
            for c in range(cols):
                footprint = pixels[r * stride:(r + 1) * stride, c * stride:(c + 1) * stride, b]
                assert abs(int(result[b, r, c]) - footprint.mean()) <= 0.5


@pytest.mark.parametrize("side, block, expected", [
    (504, 1024, 1), (2018, 1024, 2), (16136, 1024, 16), (16136, 768, 16), (50000, 768, 64), (300000, 768, 256),
])
def test_preview_stride_reaches_the_quicklook_side_when_the_block_allows(side, block, expected):
    from types import SimpleNamespace

    from geosal.pipeline.plan import PREVIEW_SIDE, ScenePlan

    plan = SimpleNamespace(grid=SimpleNamespace(height=side, width=side // 2), tile=block // 2, block_tiles=2)
    plan.block = block
    stride = ScenePlan.preview_stride.fget(plan)
    assert stride == expected and block % stride == 0
    assert side / stride <= PREVIEW_SIDE or block % (2 * stride)
