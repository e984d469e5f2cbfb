"""What a plan may ask for: a bounded working grid, and tasks whose memory fits a machine.

Both checks run while planning, before any cluster starts, and refuse in one
line that says what the configuration would take:

- :func:`check_scene_size`: the working grid (pixels after resampling) against
  ``input.max_pixels``, so a file that declares an enormous size is refused
  instead of starting millions of tasks;
- :func:`check_task_memory`: the memory of one pass-1 task by
  :func:`task_memory`'s estimate (tile, halo, block and batch sizes against the
  network's activations) against ``compute.max_task_memory_gib``.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from geosal.errors import GeosalError
from geosal.models import ModelSpec, build_network_for
from geosal.raster import SceneInfo, WorkingGrid

GIB = 2**30
PROBE_SIDE = 256
"""Side of the probe input that measures the network's activations per input pixel."""
LIVE_ACTIVATIONS = 3
"""Activations alive at once in an eager forward, in units of the largest one (a layer's input and output, and
a residual branch): the estimate was within 0.7x to 1.5x of the measured peak for ResNet-18 and -50 on the CPU."""


class LimitError(GeosalError, ValueError):
    """The scene or the configuration asks for more than the limits allow (one line with the figures)."""


def check_scene_size(path: str, grid: WorkingGrid, tile: int, max_pixels: int) -> None:
    """Refuse a working grid of more than ``max_pixels`` pixels.

    Raises:
        LimitError: naming the size, the tiles it would take and the setting.
    """
    pixels = grid.width * grid.height
    if pixels <= max_pixels:
        return
    tiles = -(-grid.width // tile) * -(-grid.height // tile)
    raise LimitError(f"{path}: the scene would be {grid.width:,} x {grid.height:,} = {pixels:.3g} working pixels "
                     f"({tiles:,} tiles of {tile} px), above input.max_pixels = {max_pixels:.3g}; raise it (--max-pixels) "
                     "to process a scene this large")


@functools.lru_cache(maxsize=32)
def activation_bytes_per_pixel(spec: ModelSpec) -> float:
    """Bytes of the network's largest activation per input pixel (batch of one), measured on a probe input."""
    network = build_network_for(spec.unpinned())
    largest = 0

    def record(module, inputs, output) -> None:
        nonlocal largest
        if isinstance(output, torch.Tensor):
            largest = max(largest, output.numel() * output.element_size())

    leaves = [m for m in network.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.inference_mode():
            network(torch.zeros(1, spec.input_bands, PROBE_SIDE, PROBE_SIDE))
    finally:
        for handle in handles:
            handle.remove()
    return largest / PROBE_SIDE**2


def task_memory(info: SceneInfo, grid: WorkingGrid, tile: int, halo: int, block_tiles: int, batch_size: int,
                activation_bytes: float, source_units: bool = False) -> dict[str, int]:
    """Estimated bytes of one pass-1 task, by part (what a worker needs besides the model).

    Args:
        info, grid: the source and the working grid.
        tile, halo, block_tiles, batch_size: the tiling, in working pixels and tiles.
        activation_bytes: :func:`activation_bytes_per_pixel` of the network.
        source_units: the model takes the scene's own values (a float32 copy of the block).

    Returns:
        ``read``: the source pixels under the block's window (``block + 2 halo`` working pixels a side, the
        in-bounds part, in the source data type) and the padded working-grid arrays made from them;
        ``forward``: one batch of tiles (``tile + 2 halo``; a batch holds at most a block's tiles) as float32
        input plus :data:`LIVE_ACTIVATIONS` times the largest activation; ``total``: both, held at once.
    """
    block = tile * block_tiles
    side = block + 2 * halo
    bands = len(info.bands)
    itemsize = np.dtype(info.dtype).itemsize
    source_pixels = min(side, grid.height) * grid.scale_y * min(side, grid.width) * grid.scale_x
    working = side * side * (bands * (itemsize + 1 + (4 if source_units else 0)) + 1)
    read = int(source_pixels * bands * itemsize) + working
    tiles = min(batch_size, block_tiles**2, -(-grid.height // tile) * -(-grid.width // tile))
    span = tile + 2 * halo
    forward = int(tiles * span * span * (bands * 4 + LIVE_ACTIVATIONS * activation_bytes))
    return {"read": read, "forward": forward, "total": read + forward}


def check_task_memory(path: str, memory: dict[str, int], tile: int, halo: int, block_tiles: int, batch_size: int,
                      max_gib: float) -> None:
    """Refuse a configuration whose pass-1 task would need more than ``max_gib`` GiB (``memory``: :func:`task_memory`).

    Raises:
        LimitError: with the estimate, its parts and the settings that make it.
    """
    if memory["total"] <= max_gib * GIB:
        return
    raise LimitError(
        f"{path}: tiles of {tile} px with a {halo} px halo, {block_tiles} x {block_tiles} per block and {batch_size} per "
        f"batch would take about {memory['total'] / GIB:,.1f} GiB per task (reading the block {memory['read'] / GIB:,.1f} GiB, "
        f"the forward pass {memory['forward'] / GIB:,.1f} GiB), above compute.max_task_memory_gib = {max_gib:g}; "
        "choose smaller tiling sizes"
    )
