"""SaliencyMaps end to end on a real network, and Fast-CAM against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

from geosal.saliency import FastCAM, SaliencyMaps
from geosal.saliency.cam import grad_cam, grad_cam_plus_plus, normalize_cam
from geosal.saliency.combine import upsample


def test_result_shapes_and_ranges(resnet18, aerial_batch):
    result = SaliencyMaps(resnet18)(aerial_batch[:2])
    assert [tuple(m.shape) for m in result.scales] == [(2, 112, 112), (2, 56, 56), (2, 28, 28), (2, 14, 14), (2, 7, 7)]
    assert all(m.dtype == torch.float32 and (m >= 0).all() for m in result.scales)
    assert all(0 <= m.min() and m.max() <= 1 for m in result.normalized)
    assert result.combined.shape == (2, 224, 224) and 0 <= result.combined.min() and result.combined.max() <= 1
    assert result.logits.shape == (2, 10)
    rgb = result.lovi()
    assert rgb.shape == (2, 3, 224, 224) and torch.isfinite(rgb).all()


def test_batch_invariance(resnet18, aerial_batch):
    saliency = SaliencyMaps(resnet18)
    batch = saliency(aerial_batch)
    for i in (0, 3, 7):
        alone = saliency(aerial_batch[i : i + 1])
        for together, single in zip(batch.scales, alone.scales):
            torch.testing.assert_close(together[i], single[0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(batch.combined[i], alone.combined[0], rtol=1e-4, atol=1e-4)


def test_compiled_path_agrees_with_hooks(resnet18, aerial_batch):
    eager = SaliencyMaps(resnet18)(aerial_batch[:2])
    compiled = SaliencyMaps(resnet18, compile=True)
    result = compiled(aerial_batch[:2])
    assert compiled.compile  # traced, not fallen back to hooks
    for a, b in zip(eager.scales, result.scales):
        torch.testing.assert_close(a, b, rtol=2e-3, atol=1e-3)  # compiled convolutions round differently
    torch.testing.assert_close(eager.logits, result.logits, rtol=1e-3, atol=1e-3)


def test_weights_change_the_combined_map(resnet18, aerial_batch):
    x = aerial_batch[:1]
    equal = SaliencyMaps(resnet18, weights="equal")(x).combined
    prior = SaliencyMaps(resnet18, weights="prior")(x).combined
    assert (equal - prior).abs().max() > 1e-3


def independent_cam(model, images, target, plus_plus):
    """Grad-CAM(++) with ordinary full autograd through the whole network."""
    kept = {}

    def keep(module, args, output):
        output.retain_grad()
        kept["a"] = output

    handle = model.layer4.register_forward_hook(keep)
    try:
        logits = model(images.clone().requires_grad_(True))
        logits.gather(1, target.view(-1, 1)).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    a, g = kept["a"].detach().double().numpy(), kept["a"].grad.double().numpy()
    if plus_plus:
        g2, g3 = g**2, g**3
        denominator = 2 * g2 + a.sum(axis=(2, 3), keepdims=True) * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(2, 3))
    else:
        weights = g.mean(axis=(2, 3))
    cam = np.maximum((weights[:, :, None, None] * a).sum(1), 0)
    peak = cam.reshape(len(cam), -1).max(1)[:, None, None]
    return torch.from_numpy(np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)).float()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_fast_cam_matches_full_autograd(resnet18, aerial_batch, method):
    images = aerial_batch[:4]
    result = FastCAM(resnet18, method=method)(images)
    with torch.no_grad():
        predicted = resnet18(images).argmax(1)
    assert torch.equal(result.target, predicted)
    expected = upsample(independent_cam(resnet18, images, result.target, method == "gradcam++"), (224, 224))
    torch.testing.assert_close(result.cam, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(result.fast_cam, result.saliency.combined * expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(result.non_class, result.saliency.combined * (1 - expected), rtol=1e-4, atol=1e-4)


def test_fast_cam_explains_a_given_target(resnet18, aerial_batch):
    target = torch.tensor([3, 1])
    result = FastCAM(resnet18)(aerial_batch[:2], target=target)
    expected = upsample(independent_cam(resnet18, aerial_batch[:2], target, True), (224, 224))
    torch.testing.assert_close(result.cam, expected, rtol=1e-4, atol=1e-4)


def test_fast_cam_differentiates_only_the_head(resnet18, aerial_batch):
    fired = {"trunk": 0, "head": 0}
    handles = [
        resnet18.layer3.register_full_backward_hook(lambda *a: fired.__setitem__("trunk", fired["trunk"] + 1)),
        resnet18.fc.register_full_backward_hook(lambda *a: fired.__setitem__("head", fired["head"] + 1)),
    ]
    try:
        FastCAM(resnet18)(aerial_batch[:2])
    finally:
        for h in handles:
            h.remove()
    assert fired == {"trunk": 0, "head": 1}
    assert all(p.grad is None for p in resnet18.parameters())
    assert torch.is_grad_enabled()  # the caller's grad mode is restored


@pytest.mark.parametrize("ours, theirs", [(grad_cam, GradCAM), (grad_cam_plus_plus, GradCAMPlusPlus)])
def test_cam_formulas_match_pytorch_grad_cam(resnet18, ours, theirs):
    rng = np.random.default_rng(0)
    activations = np.maximum(rng.normal(size=(2, 16, 7, 7)), 0).astype(np.float32)
    # gradients of order 1, so pytorch-grad-cam's 1e-6 guard in the Grad-CAM++ denominator is negligible
    gradients = rng.normal(size=(2, 16, 7, 7)).astype(np.float32)
    reference = theirs(model=resnet18, target_layers=[resnet18.layer4])
    weights = reference.get_cam_weights(None, None, None, activations, gradients)
    expected = np.maximum((weights[:, :, None, None] * activations).sum(1), 0)
    got = ours(torch.from_numpy(activations), torch.from_numpy(gradients))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_normalize_cam_keeps_all_zero_maps_zero():
    out = normalize_cam(torch.stack([torch.zeros(3, 3), torch.full((3, 3), 2.0)]))
    assert out[0].max() == 0 and out[1].min() == 1
