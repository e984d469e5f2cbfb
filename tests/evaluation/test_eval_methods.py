"""Every registered method on a real batch, and the properties the protocols rely on."""

from __future__ import annotations

import pytest
import torch

from geosal.evaluation.catalog import KAR_ROAR_DEFAULT, LEARNED, MAIN_METHODS, layer_methods
from geosal.evaluation.errors import EvaluationError
from geosal.evaluation.methods import METHODS, MethodContext, MethodOptions, compute_batch, get_methods, random_map, time_methods
from geosal.saliency import SaliencyMaps
from geosal.saliency.combine import upsample


@pytest.fixture(scope="module")
def context(model21):
    context = MethodContext(model21, MethodOptions(ig_steps=4, nt_samples=3))
    context.learned_weights = LEARNED_WEIGHTS
    return context


LEARNED_WEIGHTS = (0.3, 0.0, 0.5, 0.6, 1.0)


@pytest.fixture(scope="module")
def all_maps(context, real_batch):
    x, ids = real_batch
    return compute_batch(context, list(METHODS.values()), x[:2], ids[:2])


def test_registry_contents():
    assert len(MAIN_METHODS) == 26 and set(KAR_ROAR_DEFAULT) - {LEARNED} <= set(MAIN_METHODS)
    assert LEARNED in KAR_ROAR_DEFAULT and LEARNED not in MAIN_METHODS  # it needs the layers protocol's results
    for name in ("random", "smoe_prior", "smoe_linear", "smoe_equal", "fastcam", "gradcam", "gradcampp",
                 "gradient", "gradient_sg2", "guided_backprop", "guided_backprop_sg2", "integrated_gradients",
                 "integrated_gradients_sg2", "std_equal", "truncated_normal_entropy_equal"):
        assert name in MAIN_METHODS
    assert [f"smoe_L{k}" for k in range(1, 6)] == [m for m in MAIN_METHODS if m.startswith("smoe_L")]
    assert len(layer_methods()) == 5 * 10 and len(layer_methods(["smoe"])) == 10
    assert [m.name for m in get_methods("default")] == list(KAR_ROAR_DEFAULT)
    with pytest.raises(ValueError, match="unknown method"):
        get_methods("smoe_prior,nonsense")


def test_every_method_gives_finite_maps_of_the_image_size(all_maps, real_batch):
    x, _ = real_batch
    assert set(all_maps) == set(METHODS)
    for name, saliency in all_maps.items():
        assert saliency.shape == (2, *x.shape[-2:]), name
        assert saliency.dtype == torch.float32 and torch.isfinite(saliency).all(), name
        assert saliency.flatten(1).std(1).gt(0).all() or name in ("gradcam",), f"{name} is constant"


def test_each_method_alone_equals_the_shared_computation(context, all_maps, real_batch):
    x, ids = real_batch
    for name in ("smoe_L3", "fastcam", "truncated_normal_std_L1", "random_L5", "std_equal", "gradient"):
        context.new_batch()
        torch.testing.assert_close(METHODS[name](context, x[:2], ids[:2]), all_maps[name], rtol=1e-4, atol=1e-5)


def test_smoe_maps_are_the_library_maps(model21, all_maps, real_batch):
    x, _ = real_batch
    result = SaliencyMaps(model21, layers=["relu", "layer1", "layer2", "layer3", "layer4"], weights="prior")(x[:2])
    torch.testing.assert_close(all_maps["smoe_prior"], result.combined)
    torch.testing.assert_close(all_maps["smoe_L2"], upsample(result.normalized[1], (64, 64)))


def test_random_is_seeded_per_image(context, real_batch):
    x, ids = real_batch
    together = METHODS["random"](context, x, ids)
    alone = METHODS["random"](context, x[2:3], ids[2:3])
    assert torch.equal(together[2], alone[0])
    assert torch.equal(together[0], random_map(0, ids[0], (64, 64)))
    assert not torch.equal(together[0], together[1])


def test_gradient_is_the_absolute_input_gradient_summed_over_channels(model21, all_maps, real_batch):
    x, _ = real_batch
    x = x[:2].clone().requires_grad_(True)
    logits = model21(x)
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
    torch.testing.assert_close(all_maps["gradient"], x.grad.abs().sum(1), rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_reproducible(context, real_batch):
    x, ids = real_batch
    a = METHODS["gradient_sg2"](context, x[:1], ids[:1])
    b = METHODS["gradient_sg2"](context, x[:1], ids[:1])
    assert torch.equal(a, b)


def test_time_methods_reports_seconds_per_image(context, real_batch):
    x, ids = real_batch
    seconds = time_methods(context, [METHODS["random"], METHODS["smoe_prior"]], x[:2], ids[:2])
    assert set(seconds) == {"random", "smoe_prior"} and all(s >= 0 for s in seconds.values())


def test_learned_weighting_is_the_weighted_mean_of_the_single_scale_maps(all_maps):
    """The runner builds smoe_learned from cached single-scale maps; that is exact because Eq. 3 is linear."""
    weighted = sum(w * all_maps[f"smoe_L{k}"] for k, w in enumerate(LEARNED_WEIGHTS, 1)) / sum(LEARNED_WEIGHTS)
    torch.testing.assert_close(all_maps[LEARNED], weighted, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(all_maps[LEARNED], all_maps["smoe_equal"])


def test_learned_weighting_without_weights_is_one_clear_error(model21, real_batch):
    x, ids = real_batch
    with pytest.raises(EvaluationError, match="--protocol layers"):
        METHODS[LEARNED](MethodContext(model21), x[:1], ids[:1])
