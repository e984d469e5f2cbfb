"""ROAD's noisy linear imputation and accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geosal.evaluation.road import NEIGHBOURS, impute_batch, impute_linear, removal_keep_mask, road_correct


def neighbour_mean(image: np.ndarray, y: int, x: int) -> np.ndarray:
    total, weights = 0.0, 0.0
    for dy, dx, w in NEIGHBOURS:
        if 0 <= y + dy < image.shape[1] and 0 <= x + dx < image.shape[2]:
            total = total + w * image[:, y + dy, x + dx]
            weights += w
    return total / weights


@pytest.fixture(scope="module")
def real_image(real_batch) -> np.ndarray:
    x, _ = real_batch
    return x[0].numpy().astype(np.float64)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_imputed_pixels_interpolate_their_neighbours(real_image, fraction):
    rng = np.random.default_rng(1)
    keep = rng.random(real_image.shape[1:]) > fraction
    keep[20:40, 10:50] = False  # and one large hole
    out = impute_linear(real_image, keep, noise=0.0)
    assert np.isfinite(out).all()
    assert np.array_equal(out[:, keep], real_image[:, keep])  # kept pixels unchanged, bit for bit
    for y, x in np.argwhere(~keep)[::7]:
        np.testing.assert_allclose(out[:, y, x], neighbour_mean(out, y, x), atol=1e-9)
    # Maximum principle: imputed values stay within the range of the kept ones.
    for c in range(3):
        assert real_image[c][keep].min() - 1e-9 <= out[c][~keep].min() and out[c][~keep].max() <= real_image[c][keep].max() + 1e-9


def test_noise_only_on_imputed_pixels(real_image):
    keep = np.ones(real_image.shape[1:], bool)
    keep[5:15, 5:15] = False
    clean = impute_linear(real_image, keep, noise=0.0)
    noisy = impute_linear(real_image, keep, noise=0.01, rng=np.random.default_rng(3))
    assert np.array_equal(noisy[:, keep], real_image[:, keep])
    residual = (noisy - clean)[:, ~keep]
    assert 0.007 < residual.std() < 0.013


def test_a_constant_image_is_imputed_exactly_and_a_fully_removed_one_gets_the_fill():
    image = np.full((3, 16, 16), 0.7)
    keep = np.zeros((16, 16), bool)
    keep[0, 0] = True
    np.testing.assert_allclose(impute_linear(image, keep), image, atol=1e-12)
    assert (impute_linear(image, np.zeros((16, 16), bool), fill=0.0) == 0).all()
    assert np.array_equal(impute_linear(image, np.ones((16, 16), bool)), image)


def test_batch_imputation_is_seeded_per_image(real_batch):
    x, ids = real_batch
    keep = torch.rand(len(x), *x.shape[-2:], generator=torch.Generator().manual_seed(0)) > 0.5
    a = impute_batch(x, keep, 0.01, ids)
    b = impute_batch(x[1:], keep[1:], 0.01, ids[1:])
    assert torch.equal(a[1:], b) and a.dtype == x.dtype and torch.isfinite(a).all()


def test_orders_and_accuracy(real_batch):
    x, ids = real_batch
    saliency = torch.rand(len(x), *x.shape[-2:], generator=torch.Generator().manual_seed(1))
    morf = removal_keep_mask(saliency, 0.3, "morf", ids)
    lerf = removal_keep_mask(saliency, 0.3, "lerf", ids)
    pixels = saliency[0].numel()
    assert (morf.flatten(1).sum(1) == pixels - round(0.3 * pixels)).all()
    assert (lerf.flatten(1).sum(1) == pixels - round(0.3 * pixels)).all()
    # MoRF removes the most salient pixels, LeRF the least salient.
    for b in range(len(x)):
        assert saliency[b][~morf[b]].min() > saliency[b][morf[b]].max()
        assert saliency[b][~lerf[b]].max() < saliency[b][lerf[b]].min()
    labels = torch.tensor([0, 1, 0, 1])

    def classify(images):  # class 1 when the top-left corner is bright
        return (images[:, 0, :8, :8].mean((1, 2)) > 0).long()

    truth = classify(x)
    assert road_correct(classify, x, truth, saliency, 0.0, "morf", ids, noise=0.0).all()
    accuracy = road_correct(classify, x, labels, saliency, 0.5, "lerf", ids).mean()
    assert 0.0 <= accuracy <= 1.0
