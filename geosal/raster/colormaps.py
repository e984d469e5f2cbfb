"""Colormaps as ``[256, 3]`` uint8 lookup tables, and values coloured with them.

The tables are matplotlib's (``magma``, the default, ``viridis``, ``inferno``,
``cividis``, ``gray`` and the diverging ``coolwarm``), stored in the package
file ``colormaps.json`` (written by ``python -m workflows.make_colormaps``), so
the pipeline's quicklook and QGIS styles and the viewer's tiles and legends use
the same colours without importing matplotlib.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

COLORMAPS = ("magma", "viridis", "inferno", "cividis", "gray", "coolwarm")
"""The colormaps geosal ships, by matplotlib name."""
DEFAULT_COLORMAP = "magma"
TABLE_FILE = Path(__file__).with_name("colormaps.json")


@functools.cache
def _tables() -> dict[str, np.ndarray]:
    encoded = json.loads(TABLE_FILE.read_text())["tables"]
    tables = {}
    for name, hex_bytes in encoded.items():
        table = np.frombuffer(bytes.fromhex(hex_bytes), dtype=np.uint8).reshape(256, 3)
        table.flags.writeable = False
        tables[name] = table
    return tables


def colormap(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """The colormap ``name`` (one of :data:`COLORMAPS`) as a read-only ``[256, 3]`` uint8 RGB table.

    Raises:
        KeyError: ``name`` is not a shipped colormap (the message lists them).
    """
    tables = _tables()
    if name not in tables:
        raise KeyError(f"unknown colormap {name!r}: choose one of {', '.join(COLORMAPS)}")
    return tables[name]


def color_indices(values: np.ndarray, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Table indices of ``values``: ``low`` -> 0, ``high`` -> 255, linear between, clipped.

    ``values`` is any float array; the index is ``floor((v - low) / (high - low) * 255 + 0.5)``
    clipped to [0, 255] (uint8, same shape); NaN gives 0. With ``high == low``
    values up to ``low`` give 0 and larger ones 255; ``high < low`` reverses the ramp.
    """
    values = np.asarray(values, dtype=np.float32)
    if high == low:
        return np.where(values > low, 255, 0).astype(np.uint8)
    scaled = (values - np.float32(low)) * np.float32(255.0 / (high - low)) + np.float32(0.5)
    return np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255).astype(np.uint8)


def apply_colormap(values: np.ndarray, name: str = DEFAULT_COLORMAP, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Colour ``values`` (float ``[h, w]``) with colormap ``name`` over ``[low, high]``.

    Returns uint8 ``[h, w, 4]`` RGBA: the table entry of :func:`color_indices`,
    alpha 255, and ``(0, 0, 0, 0)`` where a value is not finite (nodata).
    """
    values = np.asarray(values, dtype=np.float32)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    finite = np.isfinite(values)
    rgba[..., :3] = colormap(name)[color_indices(values, low, high)]
    rgba[..., 3] = 255
    rgba[~finite] = 0
    return rgba
