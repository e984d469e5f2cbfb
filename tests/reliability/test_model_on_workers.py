"""Workers get exactly the weights the client resolved, without its files or caches; a model that cannot be
resolved fails on the client in one line, before any worker could print a traceback."""

from __future__ import annotations

import pytest
import torch
import torchvision

from geosal.cli import main
from geosal.models import ModelSpec, save_checkpoint
from tests.paths import SCENES
from tests.reliability.conftest import SCENE, SECOND_SCENE, TILING
from tests.reliability.loopback import Cli, Loopback, assert_identical, error_lines, process_env


@pytest.mark.slow
def test_workers_elsewhere_get_the_clients_weights(tmp_path, capsys):
    """Workers started in another working directory, with empty torch and Hugging Face caches; the client names
    its checkpoint by a relative path, and the file is gone before the first worker builds the model."""
    models = tmp_path / "client"
    models.mkdir()
    torch.manual_seed(1)
    save_checkpoint(models / "resnet18_3.pt", torchvision.models.resnet18(num_classes=3).eval(),
                    ModelSpec(architecture="resnet18", num_classes=3, gsd_m=0.406).to_dict())
    options = ["--model", "resnet18_3.pt", *TILING]
    scene = str(SCENES / f"{SECOND_SCENE}.tif")
    reference = tmp_path / "reference"
    assert main(["run", scene, str(reference), "--scheduler", "in-process", "--model", str(models / "resnet18_3.pt"),
                 *TILING]) == 0
    capsys.readouterr()

    elsewhere = tmp_path / "workers"
    caches = {"TORCH_HOME": str(elsewhere / "torch"), "HF_HOME": str(elsewhere / "hf"), "HF_HUB_CACHE": str(elsewhere / "hub")}
    elsewhere.mkdir()
    with Loopback(tmp_path / "pauses", worker_env=caches, cwd=elsewhere) as cluster:
        cluster.ensure_workers()
        cluster.pauses.arm("plugin-setup")
        cli = Cli(["run", scene, str(tmp_path / "out"), "--scheduler", cluster.address, *options], env=process_env(),
                  cwd=models)
        cluster.pauses.wait("plugin-setup")  # the client has read the weights and registers them
        (models / "resnet18_3.pt").rename(tmp_path / "moved.pt")
        cluster.pauses.release("plugin-setup")
        code, _, err = cli.finish()
    assert code == 0, err
    assert_identical(tmp_path / "out" / SECOND_SCENE, reference / SECOND_SCENE)
    assert not any((elsewhere / cache).exists() for cache in ("torch", "hf", "hub"))


def test_unavailable_model_on_the_local_cluster_is_one_line(tmp_path):
    """Torchvision weights that are not cached and cannot be downloaded (every connection refused): one line from
    the client, no download notice, no worker traceback, no output."""
    env = process_env(TORCH_HOME=str(tmp_path / "torch"), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    code, out, err = Cli(["run", str(SCENES / f"{SCENE}.tif"), str(tmp_path / "out"), "--model", "resnet50:IMAGENET1K_V2"],
                         env=env).finish()
    assert code == 2, err
    assert err.strip().splitlines() == error_lines(err)
    assert error_lines(err)[0].startswith("geosal: error: cannot download torchvision weights resnet50:IMAGENET1K_V2")
    assert "Dask cluster" not in out and not (tmp_path / "out").exists()
