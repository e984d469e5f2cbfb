"""Compute each method's saliency once and keep it on disk.

Maps are computed at a *source* size (the size of the images the model sees)
and stored, float32, at every size a protocol asks for (resized by area
averaging, :func:`geosal.evaluation.masking.resize_maps`), under::

    <cache>/<fingerprint>/<split>-<count>-<ids hash>/s<source>/<method>_r<size>.npy

The fingerprint hashes the model's weights, the method options and the source
size, so a new model or new options never reuse stale maps. Methods that share
a forward pass (same :attr:`Method.group`) are computed together. Progress is
saved every few batches (``.partial.npy`` plus a ``.progress`` counter), so an
interrupted computation resumes where it stopped. The cache can be large
(float32: 16 KB per image at 64 px, 147 KB at 192 px, per method): keep it
outside the repository (the default is under ``runs/``, which git ignores).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from geosal.evaluation.cells import write_json_atomic
from geosal.evaluation.data import Split
from geosal.evaluation.masking import resize_maps
from geosal.evaluation.methods import Method, MethodContext, compute_batch

SAVE_EVERY = 8
"""Batches between two progress saves."""


def model_fingerprint(network: nn.Module) -> str:
    """SHA-1 of the network's state dict (names, shapes and values)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


def ids_digest(ids: Sequence[int]) -> str:
    return hashlib.sha1(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:10]


class SaliencyStore:
    """Saliency maps of methods on a split, computed once.

    Args:
        cache: root folder of the cache.
        context: the model and method options.
        preprocess: ``uint8 [N, H, W, 3]`` -> normalised ``[N, 3, H, W]`` float tensor.
        model_id: identifies the weights (see :func:`model_fingerprint`).
        batch_size: images per forward pass.
        log: receives progress lines.
    """

    def __init__(self, cache: str | Path, context: MethodContext, preprocess: Callable[[np.ndarray], torch.Tensor],
                 model_id: str, batch_size: int = 16, log: Callable[[str], None] = print):
        self.context = context
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.log = log
        key = json.dumps({"model": model_id, "options": asdict(context.options)}, sort_keys=True)
        self.root = Path(cache) / hashlib.sha1(key.encode()).hexdigest()[:12]
        self._key = json.loads(key)

    def folder(self, split: Split, source: int) -> Path:
        return self.root / f"{split.name}-{len(split)}-{ids_digest(split.ids)}" / f"s{source}"

    def path(self, method: str, split: Split, source: int, size: int) -> Path:
        return self.folder(split, source) / f"{method}_r{size}.npy"

    def has(self, method: str, split: Split, source: int, size: int) -> bool:
        return self.path(method, split, source, size).exists()

    def load(self, method: str, split: Split, source: int, size: int) -> np.ndarray:
        """``[N, size, size]`` float32 maps (memory-mapped) of a computed method."""
        path = self.path(method, split, source, size)
        if not path.exists():
            raise FileNotFoundError(f"saliency of {method} not computed yet: {path}")
        return np.load(path, mmap_mode="r")

    def timings(self, split: Split, source: int) -> dict:
        """``{group: {"seconds", "images", "methods"}}`` of the bulk computations."""
        path = self.folder(split, source) / "timing.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def ensure(self, methods: Sequence[Method], split: Split, source: int, sizes: Sequence[int],
               images: Callable[[], np.ndarray]) -> None:
        """Compute what is missing of ``methods`` on ``split`` at ``source`` px,
        stored at every size of ``sizes``.

        Args:
            images: returns the split's ``uint8`` images at ``source`` px (called
                only when something must be computed).
        """
        sizes = sorted(set(int(s) for s in sizes))
        todo = [m for m in methods if not all(self.has(m.name, split, source, s) for s in sizes)]
        if not todo:
            return
        pixels = images()
        if pixels.shape[1:3] != (source, source):
            raise ValueError(f"expected images of {source} px, got {pixels.shape}")
        groups: dict[str, list[Method]] = {}
        for method in todo:
            groups.setdefault(method.group or method.name, []).append(method)
        for group, members in groups.items():
            self._compute_group(group, members, split, source, sizes, pixels)

    def _compute_group(self, group: str, members: list[Method], split: Split, source: int, sizes: list[int],
                       pixels: np.ndarray) -> None:
        folder = self.folder(split, source)
        folder.mkdir(parents=True, exist_ok=True)
        if not (self.root / "key.json").exists():
            write_json_atomic(self.root / "key.json", self._key)
        count = len(split)
        progress_file = folder / f"{group}.progress"
        done = int(progress_file.read_text()) if progress_file.exists() else 0
        partials = {(m.name, size): folder / f"{m.name}_r{size}.partial.npy" for m in members for size in sizes}
        if done and not all(path.exists() for path in partials.values()):
            done = 0  # the group or the sizes changed since the interrupted run: start again
        outputs = {
            key: np.load(path, mmap_mode="r+") if done else np.lib.format.open_memmap(path, "w+", np.float32, (count, key[1], key[1]))
            for key, path in partials.items()
        }
        if done:
            self.log(f"  {group}: resuming at image {done} of {count}")
        names = ", ".join(m.name for m in members)
        self.log(f"  saliency [{names}] on {count} {split.name} images at {source} px")
        started = time.perf_counter()
        for batch_number, first in enumerate(range(done, count, self.batch_size)):
            last = min(first + self.batch_size, count)
            x = self.preprocess(pixels[first:last])
            maps = compute_batch(self.context, members, x, split.ids[first:last].tolist())
            for method in members:
                for size in sizes:
                    outputs[method.name, size][first:last] = resize_maps(maps[method.name], size).cpu().numpy()
            if (batch_number + 1) % SAVE_EVERY == 0 and last < count:
                for array in outputs.values():
                    array.flush()
                progress_file.write_text(str(last))
        elapsed = time.perf_counter() - started
        for (name, size), array in outputs.items():
            array.flush()
            del array
            os.replace(folder / f"{name}_r{size}.partial.npy", folder / f"{name}_r{size}.npy")
        outputs.clear()
        progress_file.unlink(missing_ok=True)
        timing_file = folder / "timing.json"
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        timing[group] = {"seconds": elapsed, "images": count - done, "methods": [m.name for m in members]}
        write_json_atomic(timing_file, timing)
        self.log(f"  [{names}] done in {elapsed:.0f} s ({elapsed / max(count - done, 1):.3f} s/image)")
