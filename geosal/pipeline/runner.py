"""The model that pass 1 runs: a network with saliency hooks, built once per process and reused.

A :class:`TileRunner` turns batches of uint8 tiles into raw per-scale maps (and,
for Fast-CAM, the class map at the last scale). Runners are expensive to build
(weights, scale discovery, compilation), so executors keep them in a
:class:`RunnerCache` keyed by :class:`RunnerKey`: the in-process executor holds
one, each Dask worker holds one in its model plugin (:mod:`geosal.cluster.plugin`).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import torch

from geosal.models import ModelSpec, load_from_spec
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


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``cuda`` when a GPU is visible, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class TileRunner:
    """A loaded model with saliency hooks: tiles in, raw per-scale maps out.

    Args:
        key: model spec and saliency settings.
    """

    def __init__(self, key: RunnerKey):
        self.key = key
        self.device = torch.device(resolve_device(key.device))
        self.model = load_from_spec(key.spec, self.device)
        self.maps = SaliencyMaps(self.model.network, list(key.layers), key.statistic, compile=key.compile)
        self.cam = FastCAM(self.model.network, list(key.layers), method="gradcam", statistic=key.statistic)
        self.lock = threading.Lock()  # one forward at a time per process: threads share the model

    def _autocast(self):
        if self.key.precision == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.key.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def raw_maps(self, tiles: np.ndarray) -> list[np.ndarray]:
        """Raw saliency maps of a batch of tiles.

        Args:
            tiles: ``[N, H, W, bands]``: ``uint8``, or ``float32`` source values for a spec with ``input_units="source"``.

        Returns:
            One ``float32`` array ``[N, H / stride_k, W / stride_k]`` per scale
            (statistics always in float32, also under autocast), on the CPU.
        """
        with self.lock, torch.no_grad():
            x = self.model.preprocess(tiles)
            with self._autocast():
                maps, _ = self.maps.raw_maps(x)
            return [m.float().cpu().numpy() for m in maps]

    def raw_maps_and_cam(self, tiles: np.ndarray, target: int) -> tuple[list[np.ndarray], np.ndarray]:
        """As :meth:`raw_maps`, plus the unnormalised Grad-CAM ``[N, h, w]`` of
        class ``target`` at the last scale (gradients only through the head)."""
        with self.lock:
            x = self.model.preprocess(tiles)
            with self._autocast():
                maps, cam, _, _ = self.cam.raw_maps_and_cam(x, target)
            return [m.float().cpu().numpy() for m in maps], cam.cpu().numpy()


class RunnerCache:
    """The runners of one process (or one Dask worker), built on first use, thread-safe."""

    def __init__(self) -> None:
        self._runners: dict[RunnerKey, TileRunner] = {}
        self._lock = threading.Lock()
        self.constructions = 0
        """How many runners this cache has built (for tests and diagnostics)."""

    def get(self, key: RunnerKey) -> TileRunner:
        """The runner for ``key``, built on first use."""
        with self._lock:
            runner = self._runners.get(key)
            if runner is None:
                runner = self._runners[key] = TileRunner(key)
                self.constructions += 1
            return runner
