"""KAR / ROAR masks on real saliency of real images: exact fractions, complementarity, tie-breaking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geosal.evaluation.kar_roar import masked_images, plan_cells
from geosal.evaluation.masking import keep_mask, mask_uint8, mean_colour_uint8, resize_maps, saliency_ranks, top_from_ranks
from geosal.evaluation.methods import METHODS, MethodContext, compute_batch
from geosal.saliency.masks import selected_count


@pytest.fixture(scope="module")
def real_maps(model21, real_batch):
    x, ids = real_batch
    context = MethodContext(model21)
    maps = compute_batch(context, [METHODS["smoe_prior"], METHODS["fastcam"], METHODS["random"]], x, ids)
    return maps, ids


@pytest.mark.parametrize("method", ["smoe_prior", "fastcam", "random"])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.5, 0.7, 0.9, 0.025])
def test_exact_fraction_and_complementary(real_maps, method, fraction):
    maps, ids = real_maps
    saliency = maps[method]
    pixels = saliency[0].numel()
    kar = keep_mask(saliency, fraction, "kar", ids)
    roar = keep_mask(saliency, fraction, "roar", ids)
    assert kar.shape == roar.shape == saliency.shape and kar.dtype == torch.bool
    assert (kar.flatten(1).sum(1) == selected_count(fraction, pixels)).all()
    assert (roar.flatten(1).sum(1) == pixels - selected_count(fraction, pixels)).all()
    assert torch.equal(kar, ~roar)
    # KAR keeps the most salient pixels: everything kept is at least as salient as anything removed.
    for b in range(len(saliency)):
        assert saliency[b][kar[b]].min() >= saliency[b][~kar[b]].max()


def test_ranks_agree_with_masks(real_maps):
    maps, ids = real_maps
    ranks = saliency_ranks(maps["smoe_prior"], ids)
    assert sorted(ranks[0].flatten().tolist()) == list(range(ranks[0].numel()))
    for fraction in (0.1, 0.5, 0.9):
        assert torch.equal(top_from_ranks(ranks, fraction), keep_mask(maps["smoe_prior"], fraction, "kar", ids))


def test_fastcam_has_ties_and_they_are_not_broken_row_major(real_maps):
    maps, ids = real_maps
    flat = torch.zeros(1, 32, 32)  # a map that is all ties
    kar = keep_mask(flat, 0.5, "kar", [7])
    # Row-major tie-breaking would keep exactly the top 16 rows; seeded random tie-breaking spreads them.
    assert kar[0, :16].sum() < 400 and kar[0, 16:].sum() > 100
    assert torch.equal(kar, keep_mask(flat, 0.5, "kar", [7]))  # seeded: reproducible
    assert not torch.equal(kar, keep_mask(flat, 0.5, "kar", [8]))  # keyed by the image id


def test_masked_uint8_images_use_the_mean_colour(splits, real_maps):
    _, val = splits
    images = val.decode(64)[[0, 5, 10, 15]]
    maps, ids = real_maps
    fill = mean_colour_uint8((0.48, 0.49, 0.45))
    assert fill.tolist() == [122, 125, 115]
    out = masked_images(images, maps["smoe_prior"].numpy(), 0.3, "kar", np.array(ids), fill)
    keep = keep_mask(maps["smoe_prior"], 0.3, "kar", ids).numpy()
    assert out.dtype == np.uint8
    assert (out[~keep] == fill).all() and (out[keep] == images[keep]).all()
    assert np.array_equal(mask_uint8(images, keep, fill), out)
    assert masked_images(images, maps["smoe_prior"].numpy(), 0.3, "none", np.array(ids), fill) is images


def test_resize_maps_averages_areas():
    maps = torch.arange(16.0).view(1, 4, 4)
    small = resize_maps(maps, 2)
    assert small.tolist() == [[[2.5, 4.5], [10.5, 12.5]]]
    assert torch.equal(resize_maps(maps, 4), maps)


def test_plan_shares_random_roar_with_kar_of_the_complement():
    cells = plan_cells(["smoe_prior", "random"], [0.1, 0.5, 0.9])
    assert cells[0].method == "unmasked" and cells[1].method == "random"
    shared = {c.key: c.same_as for c in cells if c.same_as}
    assert shared == {("random", "roar", 0.1, "s0"): ("random", "kar", 0.9, "s0"),
                      ("random", "roar", 0.5, "s0"): ("random", "kar", 0.5, "s0"),
                      ("random", "roar", 0.9, "s0"): ("random", "kar", 0.1, "s0")}
    assert len([c for c in cells if c.same_as is None]) == 1 + 3 + 6
    assert not any(c.same_as for c in plan_cells(["random"], [0.1, 0.5], share_random=False))
    assert [c.same_as for c in plan_cells(["random"], [0.3], reference=False)] == [None, None]  # 0.7 not planned


def test_plan_repeats_every_cell_per_retraining_seed_seed_by_seed():
    cells = plan_cells(["smoe_prior", "random"], [0.1, 0.9], seeds=(3, 7))
    assert [c.seed for c in cells] == [3] * 9 + [7] * 9  # whole repetitions first: an interruption leaves complete seeds
    assert len({c.key for c in cells}) == 18
    assert all(c.same_as[-1] == f"s{c.seed}" for c in cells if c.same_as)  # shared within the same retraining only
