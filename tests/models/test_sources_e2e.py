"""Each model source end to end: a small real scene through the scene pipeline (in-process, small tiles)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geosal.config import load_config
from geosal.pipeline import run_scene
from tests.outputs import read_unit_layer
from tests.paths import SCENES

pytestmark = pytest.mark.skipif(not SCENES.is_dir(), reason="the shared test scenes are not beside the project")


def run(scene: str, out, model: dict, **input_options):
    config = load_config(overrides={
        "model": model, "input": {"resample": "native", **input_options},
        "tiling": {"tile": 128, "halo": 32, "block_tiles": 1, "batch_size": 4},
        "compute": {"scheduler": "in-process", "device": "cpu"}, "output": {"quicklook": False},
    })
    folder = run_scene(SCENES / scene, out, config, progress=False).output
    item = json.loads((folder / "item.json").read_text())["properties"]
    combined = read_unit_layer(folder / "combined.tif")
    finite = combined[np.isfinite(combined)]
    assert finite.size > 0.5 * combined.size and finite.min() >= 0 and finite.max() <= 1 and finite.std() > 0
    return item


def test_timm_convnext_checkpoint(tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    torch.save(timm.create_model("convnext_atto", num_classes=4).state_dict(), tmp_path / "convnext.pth")
    item = run("colorado_hro_15cm_small.tif", tmp_path / "out", {"name": str(tmp_path / "convnext.pth"),
                                                                 "architecture": "timm:convnext_atto"})
    assert item["geosal:layers"] == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert item["geosal:statistic"] == "smoe_scale_magnitude"  # ConvNeXt stage outputs are residual sums of any sign
    assert any("can be negative" in note for note in item["geosal:notes"])


def test_torchgeo_weights_from_the_cache(tmp_path):
    pytest.importorskip("torchgeo")
    timm = pytest.importorskip("timm")
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(timm.create_model("resnet18", in_chans=3, num_classes=0).state_dict(),
               hub / "checkpoints" / "resnet18_sentinel2_rgb_moco-e3a335e3.pth")
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    try:
        item = run("colorado_hro_15cm_small.tif", tmp_path / "out", {"name": "ResNet18_Weights.SENTINEL2_RGB_MOCO"})
    finally:
        torch.hub.set_dir(previous)
    assert item["geosal:model"]["band_names"] == ["B4", "B3", "B2"]
    assert item["geosal:model"]["input_units"] == "source" and item["geosal:statistic"] == "smoe_scale"
    assert len(item["geosal:layers"]) == 5


@pytest.mark.slow
def test_segmentation_unet_with_its_decoder(tmp_path):
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    torch.save(smp.Unet("resnet18", encoder_weights=None, classes=2).state_dict(), tmp_path / "unet.pt")
    item = run("florida_neon_10cm_nodata255.tif", tmp_path / "out", {
        "name": str(tmp_path / "unet.pt"), "architecture": "smp:Unet", "options": {"encoder_name": "resnet18"},
        "decoder": "include"})
    assert item["geosal:layers"][0] == "decoder.blocks.4" and item["geosal:layers"][-1] == "encoder.layer4"


def test_factory_four_band_model_on_the_rgbn_scene(tmp_path):
    from tests.models.factories import tiny_cnn

    torch.manual_seed(0)
    torch.save(tiny_cnn(bands=4).state_dict(), tmp_path / "rgbn.pt")
    item = run("naip_rgbn_5m_nodata0.tif", tmp_path / "out", {
        "name": str(tmp_path / "rgbn.pt"), "factory": "tests.models.factories:tiny_cnn", "options": {"bands": 4},
        "band_names": ["R", "G", "B", "N"], "mean": [0.5] * 4, "std": [0.25] * 4}, bands=[1, 2, 3, 4])
    assert item["geosal:model"]["family"] == "factory" and item["geosal:model"]["input_bands"] == 4
    assert any("feed the model's inputs R, G, B, N in this order" in note for note in item["geosal:notes"])


def test_band_count_mismatch_is_a_clear_choice(tmp_path):
    from geosal.pipeline import PlanError
    from tests.models.factories import tiny_cnn

    torch.save(tiny_cnn(bands=4).state_dict(), tmp_path / "rgbn.pt")
    with pytest.raises(PlanError, match=r"3 band\(s\) cannot feed a model with 4 inputs \(R, G, B, N\); set input.bands"):
        run("colorado_hro_15cm_small.tif", tmp_path / "out", {
            "name": str(tmp_path / "rgbn.pt"), "factory": "tests.models.factories:tiny_cnn", "options": {"bands": 4},
            "band_names": ["R", "G", "B", "N"], "mean": [0.5] * 4, "std": [0.25] * 4})


def test_a_vit_is_refused_before_any_block(tmp_path):
    pytest.importorskip("timm")
    from geosal.pipeline import PlanError

    with pytest.raises(PlanError, match=r"fails on a 256x256 probe tile \(Input height \(256\)"):
        run("colorado_hro_15cm_small.tif", tmp_path / "out", {"name": "timm:vit_tiny_patch16_224:none", "options": {"depth": 2}})
    with pytest.raises(PlanError, match=r"not spatial maps") as error:
        run("colorado_hro_15cm_small.tif", tmp_path / "out", {"name": "timm:vit_tiny_patch16_224:none",
                                                              "options": {"depth": 2, "img_size": 256}})
    assert "\n" not in str(error.value) and not (tmp_path / "out" / "colorado_hro_15cm_small").exists()


def test_cli_model_factory_and_its_refusal(tmp_path, capsys):
    from geosal.cli import main
    from tests.models.factories import tiny_cnn

    torch.save(tiny_cnn(bands=3).state_dict(), tmp_path / "tiny.pt")
    common = [str(SCENES / "colorado_hro_15cm_small.tif"), str(tmp_path / "out"), "--model", str(tmp_path / "tiny.pt"),
              "--scheduler", "in-process", "--tile", "128", "--halo", "32", "--resample", "native"]
    assert main(["run", *common, "--model-factory", "tests.models.factories:tiny_cnn", "--model-option", "bands=3"]) == 0
    assert (tmp_path / "out" / "colorado_hro_15cm_small" / "combined.tif").is_file()
    capsys.readouterr()
    code = main(["run", *common, "--overwrite", "--model-factory", "tests.models.factories:not_a_network"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "returned dict, not a torch.nn.Module" in err and "Traceback" not in err
