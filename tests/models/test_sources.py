"""Every model source: a randomly initialised model of the family, saved by the test, loaded
through the public path, its scale ends checked against the family's own stage outputs;
and every refusal as one clear line. Nothing is downloaded."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from geosal.models import (
    ModelLoadError,
    ModelSpec,
    WeightsKind,
    build_network_for,
    load_from_spec,
    load_model,
    resolve_spec,
    stac_mlm_fields,
    weight_bytes,
)
from geosal.models.extras import require
from geosal.saliency import describe_scales, find_scale_layers
from geosal.saliency.scales import NonSpatialNetworkError

timm = pytest.importorskip("timm")


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def hub(tmp_path):
    """An empty torch.hub cache (``$TORCH_HOME/hub``) for the test."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


# --- timm -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["convnext_atto", "regnetx_002", "resnet10t", "efficientnet_b0", "mobilenetv3_small_050"])
def test_timm_scale_ends_match_timms_own_stage_reductions(name):
    """timm records each stage's output stride in ``feature_info``: the discovered scales have the same strides."""
    network = timm.create_model(name, pretrained=False, num_classes=4).eval()
    strides = [s.stride for s in describe_scales(network, (1, 3, 224, 224))]
    assert strides == [info["reduction"] for info in network.feature_info]


def test_timm_stage_modules_for_convnext_and_regnet():
    convnext = timm.create_model("convnext_atto", pretrained=False).eval()
    assert find_scale_layers(convnext) == [info["module"] for info in convnext.feature_info]  # stages.0 ... stages.3
    regnet = timm.create_model("regnetx_002", pretrained=False).eval()
    assert find_scale_layers(regnet) == [info["module"] for info in regnet.feature_info]  # stem, s1 ... s4


def test_timm_checkpoint_loads_through_the_public_path(tmp_path):
    torch.manual_seed(0)
    network = timm.create_model("convnext_atto", pretrained=False, num_classes=5)
    torch.save(network.state_dict(), tmp_path / "convnext.pth")
    loaded = load_model(str(tmp_path / "convnext.pth"), architecture="timm:convnext_atto")
    assert loaded.spec.family == "timm" and loaded.spec.num_classes == 5
    assert same_weights(network, loaded.network)
    assert loaded.spec.weights.sha256 == hashlib.sha256((tmp_path / "convnext.pth").read_bytes()).hexdigest()


def test_timm_features_only_backbone_takes_a_whole_model_checkpoint(tmp_path):
    network = timm.create_model("convnext_atto", pretrained=False, num_classes=5)
    torch.save(network.state_dict(), tmp_path / "convnext.pth")
    loaded = load_model(str(tmp_path / "convnext.pth"), architecture="timm:convnext_atto", options={"features_only": True})
    assert find_scale_layers(loaded.network) == ["stages_0", "stages_1", "stages_2", "stages_3"]
    torch.testing.assert_close(loaded.network.stem_0.weight, network.stem[0].weight)


def test_timm_weights_come_from_timms_cache(tmp_path, monkeypatch):
    """A test-made file placed where timm's download would have put it (the Hugging Face hub cache)."""
    safetensors_torch = pytest.importorskip("safetensors.torch")
    cache = tmp_path / "hf"
    snapshot = cache / "models--timm--convnext_atto.d2_in1k" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (cache / "models--timm--convnext_atto.d2_in1k" / "refs").mkdir()
    (cache / "models--timm--convnext_atto.d2_in1k" / "refs" / "main").write_text("0123abcd")
    network = timm.create_model("convnext_atto", pretrained=False)
    safetensors_torch.save_file({k: v.contiguous() for k, v in network.state_dict().items()}, snapshot / "model.safetensors")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    loaded = load_model("timm:convnext_atto")
    assert str(loaded.spec.weights) == "timm:convnext_atto.d2_in1k" and loaded.spec.num_classes == 1000
    assert same_weights(network, loaded.network)
    assert loaded.spec.mean == (0.485, 0.456, 0.406) and loaded.spec.input_size == 224
    four_band = load_model("timm:convnext_atto", input_bands=4, mean=(0.5,) * 4, std=(0.25,) * 4)
    assert four_band.network.stem[0].in_channels == 4  # timm's own adaptation of the first convolution


def test_timm_weights_not_cached_say_what_to_fetch(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    with pytest.raises(ModelLoadError) as error:
        resolve_spec("timm:convnext_atto")
    message = str(error.value)
    assert "\n" not in message and "convnext_atto.d2_in1k" in message and str(hub / "checkpoints") in message


def test_unknown_timm_name_is_one_line():
    with pytest.raises(ModelLoadError, match=r"unknown timm model 'convnext_tinyy' \(close: convnext_tiny"):
        resolve_spec("timm:convnext_tinyy")


# --- TorchGeo ----------------------------------------------------------------------------------------

TORCHGEO_S2 = "ResNet18_Weights.SENTINEL2_ALL_MOCO"


def test_torchgeo_weights_not_cached_name_the_file_and_folder(hub):
    pytest.importorskip("torchgeo")
    with pytest.raises(ModelLoadError) as error:
        resolve_spec(TORCHGEO_S2)
    message = str(error.value)
    assert "\n" not in message
    assert "resnet18_sentinel2_all_moco-59bfdff9.pth" in message and f"put it in {hub / 'checkpoints'}" in message


def test_torchgeo_weights_from_the_cache_carry_bands_and_normalisation(hub):
    pytest.importorskip("torchgeo")
    torch.manual_seed(0)
    network = timm.create_model("resnet18", pretrained=False, in_chans=13, num_classes=0)
    state = {**network.state_dict(), "fc.weight": torch.zeros(7, 512), "fc.bias": torch.zeros(7)}  # as the MoCo files have
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(state, hub / "checkpoints" / "resnet18_sentinel2_all_moco-59bfdff9.pth")
    loaded = load_model(f"torchgeo:{TORCHGEO_S2}")
    spec = loaded.spec
    assert spec.weights.kind is WeightsKind.TORCHGEO and spec.family == "torchgeo" and spec.architecture == "resnet18"
    assert spec.input_bands == 13 and spec.band_names[:4] == ("B1", "B2", "B3", "B4") and spec.band_names[-1] == "B12"
    assert spec.input_units == "source" and spec.pixel_scale == 1.0 and spec.mean == (0.0,) and spec.std == (10000.0,)
    assert same_weights(network, loaded.network)
    x = loaded.preprocess(np.full((1, 32, 32, 13), 5000, np.uint16))  # reflectance x 10000, as TorchGeo feeds it
    torch.testing.assert_close(x, torch.full((1, 13, 32, 32), 0.5))
    assert find_scale_layers(loaded.network, (1, 13, 224, 224)) == ["act1", "layer1", "layer2", "layer3", "layer4"]
    fields = stac_mlm_fields(spec, loaded.network)
    assert fields["mlm:input"][0]["bands"] == list(spec.band_names)
    assert fields["mlm:input"][0]["value_scaling"][0] == {"type": "z-score", "mean": 0.0, "stddev": 10000.0}
    assert fields["mlm:pretrained_source"] == f"torchgeo:{TORCHGEO_S2}" and fields["geosal:weights_sha256"] == spec.weights.sha256


def test_unknown_torchgeo_weights():
    pytest.importorskip("torchgeo")
    with pytest.raises(ModelLoadError, match="ResNet18_Weights has no weights 'SENTINEL9'"):
        resolve_spec("ResNet18_Weights.SENTINEL9")


# --- segmentation --------------------------------------------------------------------------------------

def test_segmentation_encoder_or_decoder_scales(tmp_path):
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    network = smp.Unet("resnet18", encoder_weights=None, in_channels=3, classes=2)
    torch.save(network.state_dict(), tmp_path / "unet.pt")
    options = {"encoder_name": "resnet18"}
    encoder = load_model(str(tmp_path / "unet.pt"), architecture="smp:Unet", options=options)
    assert encoder.spec.num_classes == 2 and encoder.spec.decoder == "ignore"
    assert find_scale_layers(encoder.network) == ["encoder.relu", "encoder.layer1", "encoder.layer2", "encoder.layer3",
                                                  "encoder.layer4"]
    whole = load_model(str(tmp_path / "unet.pt"), architecture="smp:Unet", options=options, decoder="include")
    assert same_weights(network, whole.network)
    scales = describe_scales(whole.network, (1, 3, 224, 224), decoder=True)
    assert [(s.name, s.stride) for s in scales] == [
        ("decoder.blocks.4", 1), ("decoder.blocks.3", 2), ("decoder.blocks.2", 4), ("decoder.blocks.1", 8),
        ("decoder.blocks.0", 16), ("encoder.layer4", 32)]
    # the encoder run alone gives the same features as inside the whole network
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(encoder.network(x), whole.network.encoder(x)[-1])


# --- factory -----------------------------------------------------------------------------------------

FACTORY = "tests.models.factories:tiny_cnn"


def test_factory_with_a_safe_checkpoint(tmp_path):
    from tests.models.factories import tiny_cnn

    network = tiny_cnn(bands=4, classes=3)
    torch.save({"state_dict": network.state_dict()}, tmp_path / "tiny.ckpt")
    loaded = load_model(str(tmp_path / "tiny.ckpt"), factory=FACTORY, options={"bands": 4, "classes": 3},
                        mean=(0.5,) * 4, std=(0.25,) * 4)
    assert loaded.spec.family == "factory" and loaded.spec.input_bands == 4 and loaded.spec.num_classes == 3
    assert same_weights(network, loaded.network)
    assert find_scale_layers(loaded.network, (1, 4, 64, 64)) == ["0", "1", "2"]


@pytest.mark.parametrize("factory, options, message", [
    ("no_such_package.models:build", {}, r"cannot import no_such_package\.models \(ModuleNotFoundError"),
    ("tests.models.factories:nothing_here", {}, "has no attribute 'nothing_here'"),
    ("tests.models.factories:not_a_network", {}, "returned dict, not a torch.nn.Module"),
    ("tests.models.factories", {}, "must look like package.module:function"),
    (FACTORY, {"depth": 3}, r"failed: TypeError: .*unexpected keyword argument 'depth'"),
], ids=["import", "attribute", "not-a-module", "malformed", "bad-arguments"])
def test_factory_refusals_are_one_line(tmp_path, factory, options, message):
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(ModelLoadError, match=message) as error:
        resolve_spec(str(tmp_path / "w.pt"), factory=factory, options=options)
    assert "\n" not in str(error.value)


def test_checkpoint_that_does_not_fit_the_factory(tmp_path):
    from tests.models.factories import tiny_cnn

    torch.save(tiny_cnn(bands=4, width=16).state_dict(), tmp_path / "wide.pt")
    mismatch = r"does not fit the network: shape mismatches .*0\.0\.weight \(16, 4, 3, 3\) vs \(8, 4, 3, 3\)"
    with pytest.raises(ModelLoadError, match=mismatch):
        resolve_spec(str(tmp_path / "wide.pt"), factory=FACTORY, mean=(0.5,) * 4, std=(0.25,) * 4)


# --- non-spatial networks, missing extras --------------------------------------------------------------

def test_a_vit_is_refused_in_one_line():
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, depth=2).eval()
    with pytest.raises(NonSpatialNetworkError, match=r"not spatial maps: .*\[B, tokens, C\] token sequences") as error:
        describe_scales(vit, (1, 3, 224, 224))
    assert "\n" not in str(error.value)


def test_a_missing_extra_names_the_pip_line():
    with pytest.raises(ModelLoadError, match=r"pip install 'geosal\[segmentation\]'"):
        require("segmentation_models_pytorch.no_such_submodule")


# --- pinning: the client resolves, a worker elsewhere gets exactly those bytes -------------------------

def test_worker_builds_from_the_clients_bytes_and_refuses_others(tmp_path, monkeypatch):
    from tests.models.factories import tiny_cnn

    network = tiny_cnn(bands=3)
    path = tmp_path / "client" / "tiny.pt"
    path.parent.mkdir()
    torch.save(network.state_dict(), path)
    spec = resolve_spec(str(path), factory=FACTORY, options={"bands": 3})
    content = weight_bytes(spec)
    path.unlink()  # the worker does not share the client's files
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    monkeypatch.chdir(worker_dir)
    with pytest.raises(ModelLoadError, match="checkpoint not found"):
        load_from_spec(spec)
    loaded = load_from_spec(spec, weights=content)
    assert same_weights(network, loaded.network)
    other = tiny_cnn(bands=3)
    torch.save(other.state_dict(), worker_dir / "other.pt")
    with pytest.raises(ModelLoadError, match="not the ones the client resolved"):
        load_from_spec(spec, weights=(worker_dir / "other.pt").read_bytes())


def test_a_checkpoint_changed_after_resolving_is_refused(tmp_path):
    from tests.models.factories import tiny_cnn

    path = tmp_path / "tiny.pt"
    torch.save(tiny_cnn(bands=3).state_dict(), path)
    spec = resolve_spec(str(path), factory=FACTORY, options={"bands": 3})
    torch.save(tiny_cnn(bands=3).state_dict(), path)
    os.utime(path, ns=(1, 1))
    with pytest.raises(ModelLoadError, match="not the ones the client resolved"):
        load_from_spec(spec)


def test_spec_with_options_round_trips_and_probes():
    with pytest.warns(UserWarning, match="random weights"):
        loaded = load_model("timm:convnext_atto:none", options={"drop_path_rate": 0.1}, num_classes=3)
    spec = loaded.spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec and hash(spec)
    assert spec.options == (("drop_path_rate", 0.1),)
    assert find_scale_layers(build_network_for(spec)) == ["stages.0", "stages.1", "stages.2", "stages.3"]
    with pytest.raises(ModelLoadError, match="model option 'nested': dict values are not supported"):
        resolve_spec("timm:convnext_atto:none", options={"nested": {"a": 1}})
