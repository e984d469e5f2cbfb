"""Every model source round-trips, and every refusal is one clear error."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
import torchvision

from geosal.models import (
    ModelLoadError,
    ModelSpec,
    WeightsKind,
    WeightsSource,
    adapt_first_conv,
    load_model,
    resolve_spec,
    save_checkpoint,
)


def small_resnet(classes: int = 5, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=classes).eval()


def same_weights(a: torch.nn.Module, b: torch.nn.Module, half: bool = False) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    convert = (lambda t: t.half().float() if t.is_floating_point() else t) if half else (lambda t: t)
    return sa.keys() == sb.keys() and all(torch.equal(convert(sa[k]).to(sb[k].dtype), sb[k]) for k in sa)


def test_geosal_checkpoint_round_trip(tmp_path):
    network = small_resnet()
    spec = ModelSpec(architecture="resnet18", num_classes=5, classes=tuple("abcde"), gsd_m=0.3, mean=(0.1, 0.2, 0.3), std=(1.0, 1.0, 1.0))
    save_checkpoint(tmp_path / "m.pt", network, spec.to_dict())
    loaded = load_model(str(tmp_path / "m.pt"))
    assert not loaded.network.training
    assert loaded.classes == list("abcde") and loaded.spec.gsd_m == 0.3 and loaded.spec.mean == (0.1, 0.2, 0.3)
    assert str(loaded.spec.weights) == f"checkpoint:{(tmp_path / 'm.pt').resolve()}"
    assert loaded.spec.weights.sha256 == hashlib.sha256((tmp_path / "m.pt").read_bytes()).hexdigest()
    assert same_weights(network, loaded.network, half=True)


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": {f"model.{k}": v for k, v in sd.items()}, "hyper_parameters": {"lr": 0.1}},  # TorchGeo / Lightning
        lambda sd: {"model": sd, "epoch": 3},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},  # DataParallel
        lambda sd: {"model_state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},  # torch.compile
    ],
    ids=["plain", "lightning", "model-key", "module-prefix", "compiled"],
)
def test_plain_state_dicts_and_wrappers(tmp_path, wrap):
    network = small_resnet(classes=7)
    torch.save(wrap(network.state_dict()), tmp_path / "w.pth")
    loaded = load_model(str(tmp_path / "w.pth"), architecture="resnet18")
    assert loaded.spec.num_classes == 7  # read off the checkpoint
    assert same_weights(network, loaded.network)


def test_four_band_checkpoint_infers_input_bands(tmp_path):
    network = torchvision.models.resnet18(num_classes=3)
    adapt_first_conv(network, 4)
    torch.save(network.state_dict(), tmp_path / "rgbn.pt")
    loaded = load_model(str(tmp_path / "rgbn.pt"), architecture="resnet18", mean=(0.5,) * 4, std=(0.2,) * 4)
    assert loaded.spec.input_bands == 4 and loaded.network.conv1.in_channels == 4
    x = loaded.preprocess(np.zeros((2, 32, 32, 4), np.uint8))
    assert x.shape == (2, 4, 32, 32)


def test_plain_state_dict_needs_an_architecture(tmp_path):
    torch.save(small_resnet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match="architecture"):
        load_model(str(tmp_path / "w.pt"))


def test_pickled_full_model_is_refused(tmp_path):
    torch.save(small_resnet(), tmp_path / "full.pt")
    with pytest.raises(ModelLoadError, match="pickled Python objects"):
        load_model(str(tmp_path / "full.pt"), architecture="resnet18")


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b""], ids=["garbage", "empty"])
def test_corrupt_file_is_refused(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        load_model(str(tmp_path / "bad.pt"), architecture="resnet18")


def test_truncated_checkpoint_is_refused(tmp_path):
    torch.save(small_resnet().state_dict(), tmp_path / "w.pt")
    data = (tmp_path / "w.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="not a readable PyTorch checkpoint"):
        load_model(str(tmp_path / "cut.pt"), architecture="resnet18")


def test_wrong_keys_are_listed(tmp_path):
    torch.save(torchvision.models.vgg11(num_classes=5).state_dict(), tmp_path / "vgg.pt")
    expected = r"missing keys: .*conv1\.weight and 116 more; unexpected keys: classifier\.0\.bias.* and 16 more"
    with pytest.raises(ModelLoadError, match=expected):
        load_model(str(tmp_path / "vgg.pt"), architecture="resnet18", num_classes=5)


def test_wrong_shapes_are_listed(tmp_path):
    torch.save(small_resnet(classes=5).state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match=r"shape mismatches.*fc\.weight \(5, 512\) vs \(7, 512\)"):
        load_model(str(tmp_path / "w.pt"), architecture="resnet18", num_classes=7)


def test_missing_checkpoint_file():
    with pytest.raises(ModelLoadError, match="checkpoint not found"):
        load_model("no/such/model.pt", architecture="resnet18")


@pytest.mark.parametrize("name, message", [("resnet9000", "unknown model"), ("resnet18:IMAGENET9K", "no torchvision weights")])
def test_unknown_architecture_or_weights(name, message):
    with pytest.raises(ModelLoadError, match=message):
        resolve_spec(name)


def test_unknown_architecture_for_a_checkpoint(tmp_path):
    torch.save(small_resnet().state_dict(), tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match="unknown architecture 'resnet9000'"):
        load_model(str(tmp_path / "w.pt"), architecture="resnet9000")


def test_random_weights_warn():
    with pytest.warns(UserWarning, match="random weights"):
        loaded = load_model("resnet18:none", num_classes=4)
    assert loaded.spec.weights.is_random and loaded.network.fc.out_features == 4
    with pytest.warns(UserWarning, match="random weights"):
        load_model("none", architecture="resnet18")


@pytest.fixture
def empty_hub(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


def test_offline_torchvision_download_is_one_clear_error(empty_hub):
    with pytest.raises(ModelLoadError, match=r"cannot download torchvision weights resnet18:IMAGENET1K_V1 .*resnet18-f37072fd\.pth"):
        load_model("resnet18:IMAGENET1K_V1")


def test_torchvision_weights_come_from_the_hub_cache(empty_hub):
    """Weights the test itself produces, placed where torchvision caches the download."""
    network = small_resnet(classes=1000)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (empty_hub / "checkpoints").mkdir(parents=True)
    torch.save(network.state_dict(), empty_hub / "checkpoints" / url.rsplit("/", 1)[-1])
    loaded = load_model("resnet18:IMAGENET1K_V1")
    assert same_weights(network, loaded.network)
    assert str(loaded.spec.weights) == "torchvision:IMAGENET1K_V1"
    assert loaded.classes[:2] == ["tench", "goldfish"] and loaded.spec.mean == (0.485, 0.456, 0.406)
    assert str(resolve_spec("resnet18").weights) == "torchvision:IMAGENET1K_V1"  # DEFAULT


def test_spec_is_small_picklable_and_round_trips(empty_hub):
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    (empty_hub / "checkpoints").mkdir(parents=True)
    torch.save(small_resnet(classes=1000).state_dict(), empty_hub / "checkpoints" / url.rsplit("/", 1)[-1])
    spec = resolve_spec("resnet18")
    assert len(pickle.dumps(spec)) < 20_000  # the 1000 ImageNet class names are most of it
    assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert len(spec.weights.sha256) == 64
    with pytest.raises(ValueError, match="unknown model spec keys: bogus"):
        ModelSpec.from_dict({**spec.to_dict(), "bogus": 1})


def test_spec_dicts_of_earlier_versions_still_load():
    """Outputs written before the typed weights source stored ``weights`` as a string."""
    old = {"architecture": "resnet18", "weights": "shipped:ucmerced-resnet18", "num_classes": 21, "classes": [],
           "input_bands": 3, "single_band": "replicate", "pixel_scale": 1 / 255, "mean": [0.4, 0.4, 0.4],
           "std": [0.2, 0.2, 0.2], "gsd_m": 0.4, "input_size": 192}
    spec = ModelSpec.from_dict(old)
    assert spec.weights == WeightsSource(WeightsKind.SHIPPED, "ucmerced-resnet18") and spec.family == "torchvision"
    assert str(spec.weights) == "shipped:ucmerced-resnet18"
    with pytest.raises(ValueError, match="unknown weights kind 'floppy'"):
        ModelSpec.from_dict({**old, "weights": "floppy:a"})


def test_preprocess_band_handling():
    with pytest.warns(UserWarning):
        loaded = load_model("resnet18:none", num_classes=2)
    pan = np.full((1, 8, 8, 1), 255, np.uint8)
    x = loaded.preprocess(pan)
    assert x.shape == (1, 3, 8, 8)
    expected = (1.0 - torch.tensor(loaded.spec.mean)) / torch.tensor(loaded.spec.std)
    torch.testing.assert_close(x[0, :, 0, 0], expected)
    with pytest.raises(ValueError, match="4 bands but the model takes 3"):
        loaded.preprocess(np.zeros((1, 8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        loaded.preprocess(np.zeros((1, 8, 8, 3), np.uint16))


def test_adapt_first_conv_keeps_rgb_response():
    network = small_resnet()
    old = network.conv1.weight.detach().clone()
    adapt_first_conv(network, 4)
    new = network.conv1.weight.detach()
    torch.testing.assert_close(new[:, :3], old * 0.75)
    torch.testing.assert_close(new[:, 3:], old.mean(1, keepdim=True) * 0.75)
    # an RGBN input whose NIR equals the mean of RGB gives the original response to RGB
    rgb = torch.rand(1, 3, 16, 16)
    rgbn = torch.cat([rgb, rgb.mean(1, keepdim=True)], 1)
    reference = torch.nn.functional.conv2d(rgb, old, stride=2, padding=3)
    adapted = network.conv1(rgbn)
    assert (adapted - reference).abs().max() < 0.3 * reference.abs().max()
