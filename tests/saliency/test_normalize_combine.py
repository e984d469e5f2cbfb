"""Normalisation (gamma of Eq. 3) and combination (Eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geosal.saliency.combine import combine, resolve_weights, upsample
from geosal.saliency.normalize import gamma_cdf, min_max, normal_cdf


def test_normal_cdf_matches_scipy_with_per_map_statistics():
    maps = torch.rand(3, 6, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1]).view(3, 1, 1)
    out = normal_cdf(maps)
    for b in range(3):
        m = maps[b].numpy()
        expected = scipy.stats.norm.cdf(m, loc=m.mean(), scale=m.std())
        np.testing.assert_allclose(out[b].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_normal_cdf_with_external_statistics():
    maps = torch.tensor([[[0.0, 1.0, 2.0]]])
    out = normal_cdf(maps, mean=1.0, std=2.0)
    np.testing.assert_allclose(out.numpy().ravel(), scipy.stats.norm.cdf([0, 1, 2], 1.0, 2.0), rtol=1e-6)
    per_image = normal_cdf(torch.zeros(2, 1, 1), mean=torch.tensor([0.0, 1.0]), std=torch.tensor([1.0, 1.0]))
    np.testing.assert_allclose(per_image.flatten().numpy(), [0.5, scipy.stats.norm.cdf(-1.0)], rtol=1e-6)


@pytest.mark.parametrize("normaliser", [normal_cdf, gamma_cdf, min_max])
def test_constant_maps_give_one_half_not_nan(normaliser):
    out = normaliser(torch.full((2, 4, 4), 3.0))
    assert torch.equal(out, torch.full_like(out, 0.5))
    out = normaliser(torch.zeros(1, 4, 4))
    assert torch.equal(out, torch.full_like(out, 0.5))


def test_zero_external_std_gives_one_half():
    assert torch.equal(normal_cdf(torch.rand(1, 3, 3), mean=0.2, std=0.0), torch.full((1, 3, 3), 0.5))


def test_gamma_cdf_matches_scipy_moment_fit():
    maps = torch.from_numpy(np.random.default_rng(0).gamma(2.0, 1.5, size=(1, 30, 30)))
    m = maps.numpy().ravel()
    shape, scale = m.mean() ** 2 / m.var(), m.var() / m.mean()
    expected = scipy.stats.gamma.cdf(m, shape, scale=scale)
    np.testing.assert_allclose(gamma_cdf(maps).numpy().ravel(), expected, rtol=1e-4, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0.01, 1e4), st.floats(0.01, 1e4),
    st.lists(st.floats(0.0, 1e7, allow_nan=False), min_size=2, max_size=200),
)
def test_gamma_cdf_is_monotone_for_any_fit(mean, std, values):
    """A truncated series turns down for large values; the regularised incomplete gamma never does."""
    s = torch.tensor(sorted(values), dtype=torch.float64).view(1, 1, -1)
    out = gamma_cdf(s, mean=mean, std=std).flatten()
    assert torch.all(out[1:] >= out[:-1]) and out.min() >= 0 and out.max() <= 1


def test_min_max_spans_zero_to_one():
    out = min_max(torch.tensor([[[2.0, 4.0, 6.0]]]))
    assert out.flatten().tolist() == [0.0, 0.5, 1.0]


def test_eq3_hand_computed_with_unequal_weights():
    """Two 1x1 maps upsampled to 2x2 (constant) and one 2x2 map, weights 1, 2, 5."""
    a = torch.tensor([[[0.2]]])
    b = torch.tensor([[[0.8]]])
    c = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    out = combine([a, b, c], (2, 2), weights=[1, 2, 5])
    expected = (1 * 0.2 + 2 * 0.8 + 5 * c[0]) / 8
    torch.testing.assert_close(out[0], expected)


def test_weights_are_really_applied():
    maps = [torch.zeros(1, 4, 4), torch.ones(1, 4, 4)]
    assert combine(maps, (4, 4), "equal").mean().item() == pytest.approx(0.5)
    assert combine(maps, (4, 4), "linear").mean().item() == pytest.approx(2 / 3)
    assert combine(maps, (4, 4), [3, 1]).mean().item() == pytest.approx(0.25)


def test_weight_presets():
    assert resolve_weights("equal", 5) == [1, 1, 1, 1, 1]
    assert resolve_weights("linear", 5) == [1, 2, 3, 4, 5]
    assert resolve_weights("prior", 5) == [0.18, 0.15, 0.37, 0.40, 0.72]
    assert resolve_weights("linear", 3) == [1, 2, 3]


@pytest.mark.parametrize(
    "weights, count, message",
    [
        ("prior", 4, "5 scales"), ("bogus", 5, "unknown weights"), ([1, 2], 3, "2 weights for 3"), ([1, -1], 2, "non-negative"),
        ([0, 0], 2, "positive sum"),
    ],
)
def test_bad_weights_are_clear_errors(weights, count, message):
    with pytest.raises(ValueError, match=message):
        resolve_weights(weights, count)


def test_upsample_is_bilinear_without_corner_alignment():
    m = torch.tensor([[[0.0, 1.0]]])
    out = upsample(m, (1, 4))
    # align_corners=False: output pixel centres at input coordinates -0.25, 0.25, 0.75, 1.25 (clamped)
    torch.testing.assert_close(out.flatten(), torch.tensor([0.0, 0.25, 0.75, 1.0]))
