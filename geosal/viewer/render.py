"""Tiles and legends as images: values through a colormap, RGB(A) as stored, PNG or raw ``.npy``.

Rendering uses numpy and Pillow only; a 256 x 256 tile is coloured and
encoded in a few milliseconds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from geosal.raster.colormaps import apply_colormap, colormap
from geosal.viewer.errors import BadRequest
from geosal.viewer.grids import TILE
from geosal.viewer.scene import Layer, Statistics, normalise
from geosal.viewer.sources import read_tile

LOVI_HUE_DEGREES = 300.0
"""LOVI's hue range: violet (300 degrees) for the finest scale to red (0) for the coarsest."""


def tile_data(layer: Layer, row: int, col: int, factor: int, values: str = "normalised",
              statistics: Statistics | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of one tile of ``layer``: ``(data, inside)`` (see :func:`~geosal.viewer.sources.read_tile`).

    For a scale layer ``values`` chooses ``"normalised"`` (normal CDF with the
    scene's ``statistics``, in [0, 1]; all NaN while no statistics exist yet)
    or ``"raw"`` (the stored statistic).

    Raises:
        BadRequest: ``values`` is neither.
    """
    if values not in ("normalised", "raw"):
        raise BadRequest(f"values must be 'normalised' or 'raw', not {values!r}")
    data, inside = read_tile(layer.source, row, col, factor, TILE)
    if layer.scale is not None and values == "normalised":
        k = layer.scale.index - 1
        if statistics is None or k >= len(statistics.mean):
            data = np.full_like(data, np.nan)
        else:
            data = normalise(data, statistics.mean[k], statistics.std[k])
    return data, inside


def tile_rgba(layer: Layer, data: np.ndarray, inside: np.ndarray, colormap_name: str, low: float, high: float) -> np.ndarray:
    """uint8 ``[256, 256, 4]``: a values layer coloured over ``[low, high]`` (nodata transparent), the scene as
    RGB (grey for one band), LOVI as stored; transparent outside the grid.

    Raises:
        BadRequest: unknown colormap.
    """
    if layer.kind == "values":
        try:
            return apply_colormap(data[0], colormap_name, low, high)
        except KeyError as error:
            raise BadRequest(str(error.args[0])) from None
    rgba = np.zeros((*inside.shape, 4), dtype=np.uint8)
    if layer.kind == "rgba":
        rgba[...] = np.moveaxis(data[:4], 0, -1)
    else:
        rgba[..., :3] = np.moveaxis(data[:3] if data.shape[0] >= 3 else np.repeat(data[:1], 3, axis=0), 0, -1)
        rgba[..., 3] = 255
    rgba[~inside] = 0
    return rgba


def png(rgba: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of uint8 ``[h, w, 4]`` RGBA (or ``[h, w, 3]`` RGB)."""
    buffer = io.BytesIO()
    mode = "RGBA" if rgba.shape[-1] == 4 else "RGB"
    Image.fromarray(np.ascontiguousarray(rgba), mode).save(buffer, "PNG", compress_level=compress_level)
    return buffer.getvalue()


def npy(data: np.ndarray) -> bytes:
    """``.npy`` bytes of ``data`` (what :func:`numpy.load` reads back)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(data), allow_pickle=False)
    return buffer.getvalue()


def colorbar(name: str, width: int = 256, height: int = 12) -> np.ndarray:
    """uint8 ``[height, width, 3]``: colormap ``name`` from its first entry (left) to its last (right).

    Raises:
        BadRequest: unknown colormap.
    """
    try:
        table = colormap(name)
    except KeyError as error:
        raise BadRequest(str(error.args[0])) from None
    index = np.rint(np.linspace(0, 255, width)).astype(np.uint8)
    return np.repeat(table[index][None], height, axis=0)


def hsv_to_rgb(hue_degrees: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The standard HSV to RGB conversion: ``[..., 3]`` float in [0, 1] (hue in degrees, taken modulo 360)."""
    h = np.asarray(hue_degrees, dtype=np.float64) / 60.0
    s, v = np.asarray(saturation, dtype=np.float64), np.asarray(value, dtype=np.float64)

    def channel(n: float) -> np.ndarray:
        k = np.remainder(n + h, 6.0)
        return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)

    return np.stack([channel(5.0), channel(3.0), channel(1.0)], axis=-1)


def lovi_legend(scales: int, width: int = 256, height: int = 96, strip: int = 14) -> np.ndarray:
    """uint8 ``[height + strip, width, 3]``: how LOVI colours a pixel.

    Above, hue across (the scales' centre of mass, scale 1 at the left to
    scale ``scales`` at the right: the hue LOVI gives a pixel where only that
    scale responds) and saturation down (1 at the top: one scale dominates; 0
    at the bottom: all scales respond alike), at full value. Below, a strip
    of value from 0 (left, black: no response) to 1 (right: the strongest).
    """
    if scales < 1:
        raise BadRequest("a LOVI legend needs at least one scale")
    position = np.linspace(0.0, 1.0, width)
    hue = (1.0 - position) * LOVI_HUE_DEGREES if scales > 1 else np.full(width, LOVI_HUE_DEGREES)
    saturation = np.linspace(1.0, 0.0, height)[:, None]
    chart = hsv_to_rgb(hue[None, :], saturation, np.ones((height, width)))
    ramp = hsv_to_rgb(np.zeros((strip, width)), np.zeros((strip, width)), np.repeat(position[None], strip, axis=0))
    return np.rint(np.concatenate([chart, ramp]) * 255).astype(np.uint8)
