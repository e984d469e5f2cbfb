"""The per-process model that pass 1 uses, built once and reused by every block.

:func:`tile_runner` keeps one :class:`TileRunner` per (model spec, saliency
settings) in the process. On a Dask worker the worker plugin builds it at
start-up (``geosal.cluster``), so tasks never carry a model; in-process runs
build it on first use. ``constructions`` counts how many were built.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import numpy as np
import torch

from geosal.models import ModelSpec, load_from_spec
from geosal.saliency import SaliencyMaps, grad_cam
from geosal.saliency.cam import _GradientAfter
from geosal.saliency.hooks import ScaleHooks


@dataclass(frozen=True)
class RunnerKey:
    """What identifies a runner: the model and how saliency is computed on it."""

    spec: ModelSpec
    layers: tuple[str, ...]
    statistic: str
    device: str
    autocast: str
    compile: bool


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
        self.saliency = SaliencyMaps(self.model.network, list(key.layers), key.statistic, compile=key.compile)
        self.lock = threading.Lock()  # one forward at a time per process: threads share the model

    def _autocast(self):
        if self.key.autocast == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.key.autocast == "bf16" else torch.float16
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
                maps, _ = self.saliency.raw_maps(x)
            return [m.float().cpu().numpy() for m in maps]

    def raw_maps_and_cam(self, tiles: np.ndarray, target: int) -> tuple[list[np.ndarray], np.ndarray]:
        """As :meth:`raw_maps`, plus the unnormalised Grad-CAM ``[N, h, w]`` of
        class ``target`` at the last scale (gradients only through the head)."""
        layers = list(self.key.layers)
        network = self.model.network
        with self.lock:
            x = self.model.preprocess(tiles)
            with ScaleHooks(network, layers, self.saliency.statistic) as hooks, _GradientAfter(network, layers[-1]) as head:
                with torch.no_grad(), self._autocast():
                    logits = network(x)
                    score = logits.float()[:, target].sum()
                    (gradients,) = torch.autograd.grad(score, head.activation)
            cam = grad_cam(head.activation.detach(), gradients)
            return [m.float().cpu().numpy() for m in hooks.maps], cam.cpu().numpy()


_runners: dict[RunnerKey, TileRunner] = {}
_runners_lock = threading.Lock()
constructions = 0


def tile_runner(key: RunnerKey) -> TileRunner:
    """The process's runner for ``key``, built on first use."""
    global constructions
    with _runners_lock:
        runner = _runners.get(key)
        if runner is None:
            runner = _runners[key] = TileRunner(key)
            constructions += 1
        return runner
