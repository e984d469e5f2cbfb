"""The model that pass 1 runs: a network with saliency hooks, built once per process and reused.

A :class:`TileRunner` turns batches of tiles into raw per-scale maps (and, for
Fast-CAM, the class map at the last scale). Runners are expensive to build
(weights, scale discovery, compilation), so executors keep them in a
:class:`RunnerCache` keyed by :class:`RunnerKey`: the in-process executor holds
one, each Dask worker holds one in its model plugin (:mod:`geosal.cluster.plugin`).

On a GPU the runner keeps the network in channels-last memory (the tiles
arrive that way), lets cuDNN pick its fastest algorithms, copies tiles from
pinned memory without blocking, and brings all of a batch's maps back in one
copy. TF32 is on only when asked for; under ``fp16`` autocast a batch whose
activations overflow (inf, hence NaN maps) is recomputed in float32, never
left as silent holes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from geosal.models import ModelSpec, load_from_spec
from geosal.models.device import resolve_device
from geosal.pipeline.job import SceneJob
from geosal.saliency import FastCAM, SaliencyMaps


@dataclass(frozen=True)
class RunnerKey:
    """What identifies a runner: the model, how saliency is computed on it, and where it runs."""

    spec: ModelSpec
    layers: tuple[str, ...]
    statistic: str
    precision: str
    device: str
    compile: bool


def runner_key(job: SceneJob) -> RunnerKey:
    """The runner a scene's pass-1 tasks need."""
    plan, settings = job.plan, job.settings
    return RunnerKey(plan.spec, tuple(s.layer for s in plan.scales), plan.statistic, plan.precision, settings.device,
                     settings.compile)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch's CPU operations of this thread on ``count`` threads, then restore the previous count.

    With the OpenMP threading of torch's Linux and macOS wheels the count belongs to the calling thread:
    a forward pass runs on every core while other threads render blocks single-threaded, instead of each
    thread's operations fanning out over every core at once (oversubscribed OpenMP teams spin: pass 2
    took 6 s instead of 1.2 s on 2 busy cores).
    """
    previous = torch.get_num_threads()
    if count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def configure_backends(device: torch.device, precision: str) -> None:
    """cuDNN's autotuner on (tile shapes repeat), TF32 only when the precision asks for it."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


class TileRunner:
    """A loaded model with saliency hooks: tiles in, raw per-scale maps out.

    Args:
        key: model spec and saliency settings.
        weights: the weight file's bytes as the client resolved them (a worker that does not share
            the client's files), or None to read them from the spec's own file.
    """

    def __init__(self, key: RunnerKey, weights: bytes | None = None):
        self.key = key
        self.device = torch.device(resolve_device(key.device))
        configure_backends(self.device, key.precision)
        self.model = load_from_spec(key.spec, self.device, weights=weights)
        if self.device.type == "cuda":
            self.model.network.to(memory_format=torch.channels_last)
        self.maps = SaliencyMaps(self.model.network, list(key.layers), key.statistic, compile=key.compile)
        self.cam = FastCAM(self.model.network, list(key.layers), method="gradcam", statistic=key.statistic)
        self.lock = threading.Lock()  # one forward at a time per process: threads share the model
        self.threads = os.cpu_count() or 1
        """CPU threads a forward pass uses (a Dask worker sets its own thread count)."""
        self.fp32_retries = 0
        """Batches recomputed in float32 because fp16 activations overflowed."""

    def _autocast(self, precision: str):
        if precision in ("none", "tf32"):
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def raw_maps(self, tiles: np.ndarray) -> list[np.ndarray]:
        """Raw saliency maps of a batch of tiles.

        Args:
            tiles: ``[N, H, W, bands]``: ``uint8``, or ``float32`` source values for a spec with
                ``input_units="source"``.

        Returns:
            One ``float32`` array ``[N, H / stride_k, W / stride_k]`` per scale
            (statistics always in float32, also under autocast), on the CPU.
        """
        with self.lock, torch.no_grad(), torch_threads(self.threads):
            x = self.model.preprocess(tiles)
            maps = self._guarded(lambda precision: self._forward(x, precision))
            return _to_numpy(maps)

    def raw_maps_and_cam(self, tiles: np.ndarray, target: int) -> tuple[list[np.ndarray], np.ndarray]:
        """As :meth:`raw_maps`, plus the unnormalised Grad-CAM ``[N, h, w]`` of
        class ``target`` at the last scale (gradients only through the head)."""
        with self.lock, torch_threads(self.threads):
            x = self.model.preprocess(tiles)
            maps = self._guarded(lambda precision: self._forward_cam(x, target, precision))
            found = _to_numpy(maps)
            return found[:-1], found[-1]

    def _forward(self, x: torch.Tensor, precision: str) -> list[torch.Tensor]:
        with self._autocast(precision):
            maps, _ = self.maps.raw_maps(x)
        return maps

    def _forward_cam(self, x: torch.Tensor, target: int, precision: str) -> list[torch.Tensor]:
        with self._autocast(precision):
            maps, cam, _, _ = self.cam.raw_maps_and_cam(x, target)
        return [*maps, cam]

    def _guarded(self, forward) -> list[torch.Tensor]:
        """``forward(precision)``, recomputed in float32 when fp16 overflowed somewhere in the batch."""
        maps = forward(self.key.precision)
        if self.key.precision == "fp16" and not all(bool(torch.isfinite(m).all()) for m in maps):
            self.fp32_retries += 1
            if self.fp32_retries == 1:
                warnings.warn("fp16 activations overflowed (above 65504): such batches are recomputed in float32; "
                              "bf16 keeps float32's range", stacklevel=3)
            maps = forward("none")
        return maps


def _to_numpy(maps: list[torch.Tensor]) -> list[np.ndarray]:
    """The maps as float32 numpy arrays, brought to the CPU in one copy."""
    flat = torch.cat([m.float().flatten(1) for m in maps], dim=1).cpu().numpy()
    out, start = [], 0
    for m in maps:
        size = m[0].numel()
        out.append(flat[:, start : start + size].reshape(m.shape))
        start += size
    return out


class RunnerCache:
    """The runners of one process (or one Dask worker), built on first use, thread-safe."""

    def __init__(self, weights: dict[RunnerKey, bytes] | None = None) -> None:
        self._runners: dict[RunnerKey, TileRunner] = {}
        self._weights = dict(weights or {})
        self._lock = threading.Lock()
        self.constructions = 0
        """How many runners this cache has built (for tests and diagnostics)."""

    def get(self, key: RunnerKey) -> TileRunner:
        """The runner for ``key``, built on first use (with the weight bytes given for it, if any)."""
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                runner = self._runners[key] = TileRunner(key, self._weights.get(key))
                self.constructions += 1
            return runner
