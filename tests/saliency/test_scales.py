"""Scale discovery on torchvision architectures, and hook hygiene."""

from __future__ import annotations

import pytest
import torch
import torchvision

from geosal.saliency import SaliencyMaps, ScaleHooks, describe_scales, find_scale_layers

EXPECTED = {
    "resnet18": ["relu", "layer1", "layer2", "layer3", "layer4"],
    "resnet50": ["relu", "layer1", "layer2", "layer3", "layer4"],
    "vgg16": ["features.3", "features.8", "features.15", "features.22", "features.29"],
    "densenet121": [
        "features.relu0", "features.transition1.relu", "features.transition2.relu",
        "features.transition3.relu", "features.norm5",
    ],
    "alexnet": ["features.1", "features.4", "features.11"],
    "mobilenet_v3_large": ["features.2.block.0", "features.4.block.0", "features.6", "features.12", "features.16"],
    "efficientnet_b0": ["features.1", "features.2", "features.3", "features.5", "features.8"],
    "convnext_tiny": ["features.1", "features.3", "features.5", "features.7"],
    "regnet_y_400mf": ["stem", "trunk_output.block1", "trunk_output.block2", "trunk_output.block3", "trunk_output.block4"],
}


@pytest.mark.parametrize("architecture", sorted(EXPECTED))
def test_scale_ends_of_torchvision_models(architecture):
    model = getattr(torchvision.models, architecture)().eval()
    scales = describe_scales(model, (1, 3, 224, 224))
    assert [s.name for s in scales] == EXPECTED[architecture]
    sizes = [s.height for s in scales]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


def test_resnet50_scale_sizes_and_strides():
    scales = describe_scales(torchvision.models.resnet50().eval())
    assert [(s.height, s.stride, s.channels) for s in scales] == [
        (112, 2, 64), (56, 4, 256), (28, 8, 512), (14, 16, 1024), (7, 32, 2048)
    ]


def test_discovery_leaves_parameters_buffers_and_mode_untouched():
    model = torchvision.models.resnet18()  # training mode: a forward would update running stats
    before = {k: v.clone() for k, v in model.state_dict().items()}
    find_scale_layers(model, (3, 160, 160))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_explicit_layers_override_discovery(resnet18, aerial_batch):
    result = SaliencyMaps(resnet18, layers=["layer2", "layer4"])(aerial_batch[:2])
    assert result.layers == ["layer2", "layer4"]
    assert [tuple(m.shape[-2:]) for m in result.scales] == [(28, 28), (7, 7)]


def test_unknown_layer_name_is_a_clear_error(resnet18):
    with pytest.raises(ValueError, match="no module named 'layer9'"):
        ScaleHooks(resnet18, ["layer1", "layer9"])


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_removed_after_use_and_user_hooks_kept(resnet18, aerial_batch):
    seen = []
    user = resnet18.layer2.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    try:
        baseline = hook_count(resnet18)
        SaliencyMaps(resnet18)(aerial_batch[:1])
        SaliencyMaps(resnet18, statistic="truncated_normal_entropy")(aerial_batch[:1])
        assert hook_count(resnet18) == baseline
        assert len(seen) == 2  # the user's hook ran during both passes
        resnet18(aerial_batch[:1])
        assert len(seen) == 3  # and is still registered
    finally:
        user.remove()


def test_hooks_removed_after_an_exception(resnet18):
    baseline = hook_count(resnet18)
    with pytest.raises(RuntimeError):
        with ScaleHooks(resnet18, ["layer1", "layer4"]):
            resnet18(torch.rand(1, 5, 64, 64))  # wrong channel count fails inside the forward
    assert hook_count(resnet18) == baseline


def test_saliency_does_not_change_mode_or_weights(aerial_batch):
    model = torchvision.models.resnet18(num_classes=4)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    SaliencyMaps(model)(aerial_batch[:2])
    assert not model.training
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_pre_activation_statistics_see_negative_values(resnet18, aerial_batch):
    """Truncated-normal statistics read the tensor before the in-place ReLU."""
    seen = {}
    with ScaleHooks(resnet18, ["relu", "layer1"], "truncated_normal_mean") as hooks:
        original = hooks.statistic.function

        def spy(x):
            seen.setdefault("min", []).append(float(x.min()))
            return original(x)

        object.__setattr__(hooks.statistic, "function", spy)
        try:
            with torch.no_grad():
                resnet18(aerial_batch[:1])
        finally:
            object.__setattr__(hooks.statistic, "function", original)
    assert all(v < 0 for v in seen["min"])
    assert all(m is not None for m in hooks.maps)
