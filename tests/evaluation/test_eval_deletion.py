"""Deletion / insertion curves and areas on a toy model whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geosal.evaluation.deletion import blur, curve_areas, curves

SIZE = 10
REGION = torch.zeros(SIZE, SIZE, dtype=torch.bool)
REGION[:2, :] = True  # the first two rows: 20 % of the image


def toy_probabilities(images: torch.Tensor) -> torch.Tensor:
    """Class 0's probability is the share of the region's pixels still at their original value 1."""
    p = images[:, 0][:, REGION].clamp(0, 1).mean(1)
    return torch.stack([p, 1 - p], dim=1)


def toy_images(batch: int = 3) -> torch.Tensor:
    x = torch.zeros(batch, 3, SIZE, SIZE)
    x[:, :, REGION] = 1.0
    return x


def test_deletion_areas_are_the_known_values():
    x = toy_images()
    perfect = REGION.float().expand(3, SIZE, SIZE)
    backwards = (~REGION).float().expand(3, SIZE, SIZE)
    good = curves(toy_probabilities, x, perfect, [0, 1, 2], "deletion", steps=10)
    bad = curves(toy_probabilities, x, backwards, [0, 1, 2], "deletion", steps=10)
    # Deleting the region first: 1, 0.5, 0, ..., 0 -> area 0.1; deleting it last: 1 (x 9), 0.5, 0 -> area 0.9.
    np.testing.assert_allclose(good[0], [1, 0.5] + [0] * 9, atol=1e-6)
    np.testing.assert_allclose(curve_areas(good), [0.1] * 3, atol=1e-6)
    np.testing.assert_allclose(curve_areas(bad), [0.9] * 3, atol=1e-6)
    random = curves(toy_probabilities, x, torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)),
                    [0, 1, 2], "deletion", steps=10)
    assert 0.1 < curve_areas(random).mean() < 0.9


def test_insertion_prefers_the_right_map():
    x = toy_images()
    perfect = REGION.float().expand(3, SIZE, SIZE)
    backwards = (~REGION).float().expand(3, SIZE, SIZE)
    good = curves(toy_probabilities, x, perfect, [0, 1, 2], "insertion", steps=10)
    bad = curves(toy_probabilities, x, backwards, [0, 1, 2], "insertion", steps=10)
    start = toy_probabilities(blur(x))[:, 0].double().numpy()
    np.testing.assert_allclose(good[:, 0], start, atol=1e-6)  # starts from the blurred image
    np.testing.assert_allclose(good[:, -1], 1.0, atol=1e-6)  # ends at the original
    np.testing.assert_allclose(good[:, 2:], 1.0, atol=1e-6)  # the region is back after 20 %
    assert (curve_areas(good) > curve_areas(bad) + 0.5).all()


def test_blur_substrate_and_validation():
    x = toy_images(1)
    with_blur = curves(toy_probabilities, x, REGION.float()[None], [0], "deletion", steps=5, substrate="blur")
    assert with_blur[0, 0] == pytest.approx(1.0) and with_blur[0, -1] < 1.0
    with pytest.raises(ValueError):
        curves(toy_probabilities, x, REGION.float()[None], [0], "sideways")


def test_a_real_model_gives_probability_curves(model21, real_batch):
    x, ids = real_batch

    def probabilities(images):
        with torch.no_grad():
            return torch.softmax(model21(images), 1)

    values = curves(probabilities, x, torch.rand(len(x), 64, 64), ids, "deletion", steps=4)
    assert values.shape == (4, 5) and np.isfinite(values).all() and ((0 <= values) & (values <= 1)).all()
    np.testing.assert_allclose(values[:, 0], probabilities(x).max(1).values.double().numpy(), rtol=1e-5)
