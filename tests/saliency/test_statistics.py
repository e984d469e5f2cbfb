"""Statistics against the paper's equations and Table 3, and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geosal.saliency import smoe_scale
from geosal.saliency.statistics import (
    STATISTICS,
    gamma_scale_mle,
    gamma_shape_mle,
    log_normal_entropy,
    log_normal_mean,
    maximum,
    mean,
    shannon_entropy,
    smoe_scale_eager,
    smoe_scale_fused,
    standard_deviation,
    truncated_normal_entropy,
    truncated_normal_mean,
    truncated_normal_std,
)

# Table 3: (alternating input values, Mean, STD, SMOE Scale), three decimals.
TABLE_3 = [
    ((0.5, 1.0), 0.75, 0.25, 0.064),
    ((1.0, 2.0), 1.5, 0.5, 0.127),
    ((2.0, 4.0), 3.0, 1.0, 0.255),
    ((1.0, 2.0), 1.5, 0.5, 0.127),
    ((2.0, 3.0), 2.5, 0.5, 0.074),
    ((2.0, 4.0), 3.0, 1.0, 0.255),
    ((0.6125, 1.8375), 1.225, 0.6125, 0.254),
]


def column(values: np.ndarray) -> torch.Tensor:
    """A single activation column ``[1, C, 1, 1]``."""
    return torch.as_tensor(np.asarray(values, dtype=np.float32)).view(1, -1, 1, 1)


@pytest.mark.parametrize("pair, table_mean, table_std, table_smoe", TABLE_3)
@pytest.mark.parametrize("fused", [True, False])
def test_table_3_rows(pair, table_mean, table_std, table_smoe, fused):
    x = column(np.tile(pair, 8))  # 16 alternating values, as the "..." of the table
    assert round(mean(x).item(), 4) == pytest.approx(table_mean)
    assert round(standard_deviation(x).item(), 4) == pytest.approx(table_std)
    assert round(smoe_scale(x, fused=fused).item(), 3) == pytest.approx(table_smoe, abs=1e-9)


def eq1(x: np.ndarray) -> float:
    """Eq. 1 written out literally, in float64."""
    x = x + 1e-6
    r = len(x)
    return (1 / r) * x.sum() * (math.log2((1 / r) * x.sum()) - (1 / r) * np.log2(x).sum())


def eq2(x: np.ndarray) -> float:
    """Eq. 2 written out literally, in float64."""
    x = x + 1e-6
    mu = x.mean()
    return float(np.mean(mu * np.log2(mu / x)))


positive_columns = arrays(
    np.float64, st.integers(2, 64), elements=st.floats(0.0, 100.0, allow_nan=False, allow_infinity=False)
)


@settings(max_examples=200, deadline=None)
@given(positive_columns)
def test_eq1_equals_eq2_and_smoe_scale(values):
    assert eq1(values) == pytest.approx(eq2(values), rel=1e-9, abs=1e-12)
    # float32 evaluation subtracts two logs of size |log2(mu)|: allow a few ulps of them, times mu.
    mu = values.mean() + 1e-6
    cancellation = 4 * np.finfo(np.float32).eps * mu * (abs(math.log2(mu)) + 1)
    got = smoe_scale_eager(column(values)).item()
    assert got == pytest.approx(eq2(values.astype(np.float32).astype(np.float64)), rel=1e-5, abs=cancellation)


def test_fused_and_eager_agree_within_1e5_relative():
    torch.manual_seed(0)
    for shape in [(4, 64, 112, 112), (4, 256, 56, 56), (4, 2048, 7, 7), (3, 5, 9, 11)]:
        for x in (torch.rand(shape), torch.relu(torch.randn(shape))):
            fused, eager = smoe_scale_fused(x), smoe_scale_eager(x)
            torch.testing.assert_close(fused, eager, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_low_precision_inputs_give_finite_float32(dtype, name):
    torch.manual_seed(1)
    x = (torch.randn(2, 300, 5, 6) * 200).to(dtype)  # sums overflow float16 if accumulated in it
    out = STATISTICS[name].function(x)
    assert out.dtype == torch.float32 and out.shape == (2, 5, 6)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(STATISTICS))
def test_every_statistic_maps_bchw_to_bhw_float32(name):
    out = STATISTICS[name].function(torch.rand(3, 7, 4, 5, dtype=torch.float64))
    assert out.shape == (3, 4, 5) and out.dtype == torch.float32


def test_rejects_non_4d_input():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        smoe_scale(torch.rand(3, 4, 5))


def test_constant_column_has_zero_smoe_scale():
    assert smoe_scale(column(np.full(32, 3.0))).item() == pytest.approx(0.0, abs=1e-6)


# --- independent computations with scipy --------------------------------------------------------


def test_shannon_entropy_matches_scipy():
    values = np.random.default_rng(0).random(50)
    expected = scipy.stats.entropy(values + 1e-6, base=2)
    assert shannon_entropy(column(values)).item() == pytest.approx(expected, rel=1e-5)


def test_log_normal_statistics_match_scipy_fit():
    values = np.random.default_rng(1).lognormal(0.3, 0.8, size=400)
    shape, _, scale = scipy.stats.lognorm.fit(values + 1e-6, floc=0)
    fitted = scipy.stats.lognorm(shape, scale=scale)
    assert log_normal_mean(column(values)).item() == pytest.approx(fitted.mean(), rel=1e-4)
    assert log_normal_entropy(column(values)).item() == pytest.approx(fitted.entropy(), rel=1e-4)


@pytest.mark.parametrize("centre", [-2.0, -0.3, 0.0, 0.7, 3.0])
def test_truncated_normal_statistics_match_scipy(centre):
    values = np.random.default_rng(2).normal(centre, 1.5, size=500)
    mu, sigma = values.mean(), values.std()
    truncated = scipy.stats.truncnorm((0 - mu) / sigma, 60.0, loc=mu, scale=sigma)  # 60 sigma: infinite in float64
    x = column(values)
    assert truncated_normal_mean(x).item() == pytest.approx(truncated.mean(), rel=1e-4)
    assert truncated_normal_std(x).item() == pytest.approx(truncated.std(), rel=1e-4)
    assert truncated_normal_entropy(x).item() == pytest.approx(truncated.entropy(), rel=1e-4, abs=1e-5)


def test_truncated_normal_is_finite_far_in_the_tail():
    x = column(np.random.default_rng(3).normal(-40.0, 1.0, size=64))
    for f in (truncated_normal_mean, truncated_normal_std, truncated_normal_entropy):
        assert math.isfinite(f(x).item())


def test_gamma_scale_mle_matches_scipy_fit():
    values = np.random.default_rng(4).gamma(0.7, 2.5, size=2000)
    shape, _, scale = scipy.stats.gamma.fit(values + 1e-6, floc=0)
    assert gamma_scale_mle(column(values)).item() == pytest.approx(scale, rel=1e-3)


def test_maximum_is_channel_max():
    x = torch.rand(2, 9, 3, 3)
    torch.testing.assert_close(maximum(x), x.amax(1))


# --- Saliency Map Order Equivalence (Appendix A.1) -----------------------------------------------

strictly_positive_columns = st.lists(
    arrays(np.float64, 16, elements=st.floats(1e-3, 50.0), unique=True), min_size=3, max_size=12
)


def ranks(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values, kind="stable"), kind="stable")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-3, 20.0), min_size=2, max_size=50, unique=True))
def test_inverse_gamma_shape_is_order_equivalent_to_log_variance(s_values):
    """Eqs. 11-13: 1/k is a strictly increasing function of s, so 1/s ~ k (Fig. 8)."""
    s = torch.tensor(s_values, dtype=torch.float64)
    inverse_k = 1 / gamma_shape_mle(s)
    assert np.array_equal(ranks(inverse_k.numpy()), ranks(s.numpy()))


@settings(max_examples=200, deadline=None)
@given(strictly_positive_columns)
def test_smoe_scale_ranks_like_gamma_mle_scale_at_equal_means(columns):
    """With the column means equal, SMOE Scale and the full MLE scale order locations identically."""
    stacked = np.stack([c / c.mean() for c in columns], axis=1)  # [C, locations], every mean 1
    x = torch.as_tensor(stacked, dtype=torch.float64).view(1, 16, 1, -1)
    smoe = smoe_scale_eager(x).flatten().double().numpy()
    mle = gamma_scale_mle(x).flatten().double().numpy()
    if well_separated(smoe) and well_separated(mle):  # columns that are permutations of each other tie exactly,
        assert np.array_equal(ranks(smoe), ranks(mle))  # and rounding noise (float32) may order them either way


def well_separated(values: np.ndarray, relative_gap: float = 1e-4) -> bool:
    """Whether no two values lie within ``relative_gap`` of each other (relative to their size)."""
    ordered = np.sort(values)
    return bool(np.all(np.diff(ordered) > relative_gap * np.maximum(np.abs(ordered[1:]), 1e-12)))


def test_order_equivalence_does_not_hold_across_different_means():
    """The paper drops the non-linear map s -> 1/k(s) as order preserving, but it
    multiplies the mean: two columns can swap order. This pins the counterexample."""
    a = np.tile([0.05, 1.95], 8)  # mean 1, large log-variance (1/k ~ s)
    b = np.tile([0.8, 1.2], 8) * 55.0  # mean 55, small log-variance (1/k ~ 2 s)
    x = torch.as_tensor(np.stack([a, b], axis=1), dtype=torch.float64).view(1, 16, 1, 2)
    smoe, mle = smoe_scale_eager(x).flatten(), gamma_scale_mle(x).flatten()
    assert smoe[0] > smoe[1] and mle[0] < mle[1]


def test_smoe_scale_and_gamma_mle_rank_real_activations_almost_identically(resnet18, aerial_batch):
    activations = {}
    handle = resnet18.layer1.register_forward_hook(lambda m, i, o: activations.setdefault("a", o))
    with torch.no_grad():
        resnet18(aerial_batch[:2])
    handle.remove()
    smoe = smoe_scale_eager(activations["a"]).flatten().numpy()
    mle = gamma_scale_mle(activations["a"]).flatten().numpy()
    rho = scipy.stats.spearmanr(smoe, mle).statistic
    assert rho > 0.98


def _smoe_reference(x: np.ndarray) -> np.ndarray:
    """Eq. 2 in float64 numpy over channels of ``[B, C, H, W]`` (values already >= 0)."""
    x = x.astype(np.float64) + 1e-6
    mu = x.mean(axis=1)
    return np.maximum(mu * (np.log2(mu) - np.log2(x).mean(axis=1)), 0.0)


def test_smoe_scale_magnitude_against_a_float64_reference():
    """Signed activations (a residual stream): the statistic is SMOE Scale of |x|."""
    from geosal.saliency.statistics import smoe_scale_magnitude

    x = torch.randn(2, 96, 7, 9, generator=torch.Generator().manual_seed(3)) * 2.5
    expected = _smoe_reference(np.abs(x.numpy()))
    for fused in (True, False):
        np.testing.assert_allclose(smoe_scale_magnitude(x, fused=fused).numpy(), expected, rtol=2e-5, atol=1e-7)
    # a sign flip of any channel leaves it unchanged; rectifying would not
    flipped = x.clone()
    flipped[:, ::2] *= -1
    torch.testing.assert_close(smoe_scale_magnitude(flipped), smoe_scale_magnitude(x))
    assert not torch.allclose(smoe_scale(flipped), smoe_scale(x))


def test_smoe_scale_magnitude_equals_smoe_scale_after_a_relu():
    from geosal.saliency.statistics import smoe_scale_magnitude

    x = torch.relu(torch.randn(1, 64, 5, 5, generator=torch.Generator().manual_seed(4)))
    torch.testing.assert_close(smoe_scale_magnitude(x), smoe_scale(x))


def test_statistic_for_scales_says_why():
    from geosal.saliency.statistics import statistic_for_scales

    assert statistic_for_scales("smoe_scale", [True, True]) == ("smoe_scale", None)
    name, note = statistic_for_scales("smoe_scale", [True, False, False])
    assert name == "smoe_scale_magnitude" and note.startswith("2 of 3 scale ends can be negative")
    assert statistic_for_scales("std", [False]) == ("std", None)
