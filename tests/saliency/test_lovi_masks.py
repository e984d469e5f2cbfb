"""LOVI (Eqs. 4-7) and KAR / ROAR masks."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geosal.saliency.lovi import hsv_to_rgb, lovi, lovi_hsv, lovi_uint8
from geosal.saliency.masks import apply_mask, kar_mask, roar_mask, selected_count, top_fraction_mask


def pixel(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


@pytest.mark.parametrize("layer", range(5))
def test_one_active_layer_is_fully_saturated_in_its_hue(layer):
    values = [0.0] * 5
    values[layer] = 0.8
    hue, saturation, value = lovi_hsv(pixel(values)).flatten().tolist()
    assert hue == pytest.approx(300 * (1 - layer / 4))
    assert saturation == pytest.approx(1.0)
    assert value == pytest.approx(0.8)


def test_equal_layers_are_unsaturated():
    _, saturation, value = lovi_hsv(pixel([0.6] * 5)).flatten().tolist()
    assert saturation == pytest.approx(0.0, abs=1e-6) and value == pytest.approx(0.6)
    r, g, b = lovi(pixel([0.6] * 5)).flatten().tolist()
    assert r == pytest.approx(g) == pytest.approx(b) == pytest.approx(0.6)


def test_hue_runs_from_violet_first_layer_to_red_last():
    first = lovi(pixel([1, 0, 0, 0, 0])).flatten().tolist()
    last = lovi(pixel([0, 0, 0, 0, 1])).flatten().tolist()
    middle = lovi(pixel([0, 0, 1, 0, 0])).flatten().tolist()
    assert first == pytest.approx([1.0, 0.0, 1.0])  # 300 degrees: violet / magenta
    assert last == pytest.approx([1.0, 0.0, 0.0])  # 0 degrees: red
    assert middle == pytest.approx([0.0, 1.0, 0.5])  # 150 degrees: green turning to cyan
    hues = [lovi_hsv(pixel(np.eye(5)[k].tolist()))[0, 0].item() for k in range(5)]
    assert hues == sorted(hues, reverse=True)


def test_all_zero_pixels_are_black_not_nan():
    out = lovi(torch.zeros(2, 5, 3, 3))
    assert torch.equal(out, torch.zeros_like(out))
    assert lovi_uint8(torch.zeros(1, 5, 2, 2)).max().item() == 0


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 359.99), st.floats(0, 1), st.floats(0, 1))
def test_hsv_to_rgb_matches_colorsys(h, s, v):
    got = hsv_to_rgb(torch.tensor([h, s, v]).view(1, 3, 1, 1)).flatten().tolist()
    assert got == pytest.approx(list(colorsys.hsv_to_rgb(h / 360, s, v)), abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(arrays(np.float32, (5,), elements=st.floats(0, 1, width=32)))
def test_lovi_is_finite_and_in_range(values):
    out = lovi(pixel(values.tolist()))
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


# --- masks -----------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 12), st.integers(1, 12)), elements=st.floats(0, 1, width=32)),
    st.floats(0, 1),
)
def test_masks_have_exact_counts_and_are_complementary(saliency, fraction):
    s = torch.from_numpy(saliency)
    keep, removed = kar_mask(s, fraction), roar_mask(s, fraction)
    expected = selected_count(fraction, s.shape[1] * s.shape[2])
    assert keep.flatten(1).sum(1).tolist() == [expected] * s.shape[0]
    assert torch.equal(keep, ~removed)
    # every kept pixel is at least as salient as every dropped one
    for b in range(s.shape[0]):
        if 0 < expected < s[b].numel():
            assert s[b][keep[b]].min() >= s[b][~keep[b]].max()


def test_ties_break_towards_the_lower_index():
    s = torch.tensor([[[0.5, 0.9, 0.5, 0.5]]])
    assert top_fraction_mask(s, 0.5).flatten().tolist() == [True, True, False, False]
    assert torch.equal(top_fraction_mask(s, 0.5), top_fraction_mask(s.clone(), 0.5))


def test_selected_count_rounds_half_up():
    assert [selected_count(p, 10) for p in (0.0, 0.1, 0.25, 0.95, 1.0)] == [0, 1, 3, 10, 10]
    with pytest.raises(ValueError):
        selected_count(1.5, 10)


def test_apply_mask_fills_with_per_channel_values():
    images = torch.ones(1, 3, 2, 2)
    keep = torch.tensor([[[True, False], [False, True]]])
    out = apply_mask(images, keep, fill=torch.tensor([0.1, 0.2, 0.3]))
    assert out[0, :, 0, 0].tolist() == [1, 1, 1]
    assert out[0, :, 0, 1].tolist() == pytest.approx([0.1, 0.2, 0.3])
