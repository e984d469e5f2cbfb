"""The GPU path, checked on the CPU: device errors, dispatch, transfers, precision guards, resources, batching."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from geosal.cli import main
from geosal.cluster.executor import task_resources
from geosal.cluster.plugin import ModelPlugin
from geosal.config import ConfigError, load_config
from geosal.models import load_model
from geosal.models.device import DeviceError, resolve_device
from geosal.pipeline.pass1 import pad_batch
from geosal.pipeline.plan import block_tiles_for
from geosal.pipeline.runner import RunnerKey, TileRunner, _to_numpy, configure_backends
from geosal.saliency import statistics
from geosal.saliency.statistics import smoe_dispatch, smoe_scale_eager, smoe_scale_fused
from tests.paths import SCENES

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what happens on a machine without a GPU")


@needs_no_gpu
def test_a_cuda_request_without_a_gpu_is_one_line_with_what_to_check():
    with pytest.raises(DeviceError) as error:
        resolve_device("cuda")
    message = str(error.value)
    assert "\n" not in message and "--device cpu" in message
    assert ("nvidia-smi" in message and "driver" in message) if torch.version.cuda else "CPU build" in message
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"


@needs_no_gpu
@pytest.mark.parametrize("option", [["--gpu"], ["--device", "cuda"]])
def test_geosal_run_on_a_gpu_fails_before_anything_starts(tmp_path, capsys, option):
    code = main(["run", str(SCENES / "colorado_hro_15cm_small.tif"), str(tmp_path / "out"), *option])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("geosal: error: device cuda requested")
    assert not (tmp_path / "out").exists()  # not even a partial output


def test_gpu_implies_cuda_and_refuses_the_cpu():
    assert load_config(overrides={"compute": {"gpu": True}}).compute.device == "cuda"
    assert load_config(overrides={"compute": {"device": "cuda:1"}}).compute.uses_gpu
    with pytest.raises(ConfigError, match="gpu"):
        load_config(overrides={"compute": {"gpu": True, "device": "cpu"}})


def test_only_tasks_that_run_the_model_ask_for_the_gpu():
    key = object()
    assert task_resources(True, key) == {"GPU": 1}
    assert task_resources(True, None) is None and task_resources(False, key) is None


def test_a_worker_without_the_gpu_builds_no_cuda_runner():
    """Mixed clusters: the plugin's setup on a CPU worker does not fail for a CUDA model (its tasks go elsewhere)."""
    spec = load_model().spec
    plugin = ModelPlugin(RunnerKey(spec, ("relu",), "smoe_scale", "none", "cuda", False))
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    plugin.setup(SimpleNamespace(state=SimpleNamespace(nthreads=1)))
    assert plugin.runners.constructions == 0


def test_smoe_dispatch_is_one_call_per_layer_off_the_cpu():
    cpu = torch.rand(2, 8, 5, 5)
    assert smoe_dispatch(cpu, native_available=True) == "native"
    assert smoe_dispatch(cpu, native_available=False) == "compiled-banded"
    assert smoe_dispatch(cpu.half(), native_available=True) == "compiled-banded"
    meta = torch.empty(2, 8, 5, 5, device="meta")  # any non-CPU device, here without a GPU
    assert smoe_dispatch(meta, native_available=True) == "compiled"
    statistics._compile_failed.add("meta")
    try:
        assert smoe_dispatch(meta, native_available=True) == "eager"
    finally:
        statistics._compile_failed.discard("meta")


def test_a_failed_compilation_falls_back_for_that_device_and_memory_errors_are_raised(monkeypatch):
    x = torch.rand(2, 6, 7, 9).half()  # not the native kernel's dtype: the compiled path

    def broken(_):
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(statistics, "_compiled_kernel", broken)
    monkeypatch.setattr(statistics, "_compile_failed", set())
    with pytest.warns(UserWarning, match="eager"):
        out = smoe_scale_fused(x)
    torch.testing.assert_close(out, smoe_scale_eager(x))
    assert statistics._compile_failed == {"cpu"}

    def out_of_memory(_):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(statistics, "_compiled_kernel", out_of_memory)
    monkeypatch.setattr(statistics, "_compile_failed", set())
    with pytest.raises(torch.cuda.OutOfMemoryError):
        smoe_scale_fused(x)
    assert not statistics._compile_failed


class Overflowing(nn.Module):
    """A network whose activations exceed fp16's range (65504) at its second scale."""

    def __init__(self):
        super().__init__()
        self.first = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
        self.second = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
        with torch.no_grad():
            self.second[0].weight.fill_(1e5)

    def forward(self, x):
        return self.head(self.second(self.first(x)))


def test_fp16_overflow_is_recomputed_in_float32_not_left_as_holes(monkeypatch):
    from geosal.pipeline import runner as runner_module

    model = SimpleNamespace(network=Overflowing().eval(), preprocess=lambda tiles: torch.from_numpy(tiles).float())
    monkeypatch.setattr(runner_module, "load_from_spec", lambda spec, device, weights=None: model)
    tiles = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32).transpose(0, 3, 1, 2).copy()
    keys = {p: RunnerKey(None, ("first", "second"), "smoe_scale", p, "cpu", False) for p in ("none", "fp16")}
    reference = TileRunner(keys["none"]).raw_maps(tiles)
    half = TileRunner(keys["fp16"])
    with pytest.warns(UserWarning, match="overflowed"):
        maps = half.raw_maps(tiles)
    assert half.fp32_retries == 1
    for ours, theirs in zip(maps, reference):
        assert np.isfinite(ours).all()
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_tf32_is_only_on_when_asked_for():
    device = torch.device("cuda")  # flags only: no GPU is touched
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark
    try:
        configure_backends(device, "none")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.benchmark
        configure_backends(device, "tf32")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before


def test_maps_come_back_in_one_copy_split_as_they_were():
    maps = [torch.rand(3, 8, 8), torch.rand(3, 4, 4).half(), torch.rand(3, 2, 2)]
    back = _to_numpy(maps)
    for ours, theirs in zip(back, maps):
        assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours, theirs.float().numpy())


def test_tiles_go_to_the_device_as_uint8_and_come_out_normalised_and_channels_last():
    model = load_model()
    tiles = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    x = model.preprocess(tiles)
    mean, std = torch.tensor(model.spec.mean).view(1, -1, 1, 1), torch.tensor(model.spec.std).view(1, -1, 1, 1)
    expected = (torch.from_numpy(tiles).permute(0, 3, 1, 2).float() * model.spec.pixel_scale - mean) / std
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)
    assert x.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("requested, batch, tile_output, expected", [
    (2, 4, 256, 2), (1, 4, 256, 2), (1, 1, 256, 1), (2, 16, 256, 4), (2, 64, 256, 8), (1, 1, 8, 2), (3, 1, 8, 4),
])
def test_blocks_grow_to_fill_a_batch_and_hold_whole_cog_tiles(requested, batch, tile_output, expected):
    block_tiles = block_tiles_for(requested, batch, tile_output)
    assert block_tiles == expected
    assert block_tiles**2 >= batch and block_tiles * tile_output % 16 == 0


def test_a_compiled_batch_is_padded_to_a_power_of_two_never_to_the_full_batch():
    tiles = np.arange(3)[:, None]
    assert pad_batch(tiles, 64).ravel().tolist() == [0, 1, 2, 2]
    assert pad_batch(tiles[:1], 64).ravel().tolist() == [0]
    assert len(pad_batch(np.arange(40)[:, None], 64)) == 64 and len(pad_batch(np.arange(5)[:, None], 6)) == 6
