"""Quicklook PNG: the scene, the combined saliency map and LOVI side by side."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import rasterio
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from rasterio.enums import Resampling
from rasterio.io import DatasetReader

_DPI = 100
_CAPTION_PX = 28
_NODATA_GREY = (0.5, 0.5, 0.5, 1.0)


def read_overview(
    dataset_or_path: DatasetReader | str | os.PathLike[str],
    bands: tuple[int, ...] | list[int],
    max_side: int,
    resampling: str = "average",
) -> np.ndarray:
    """The whole raster decimated so its longer side is at most ``max_side`` pixels.

    Returns ``[len(bands), h, w]`` in the raster's dtype, with the raster's
    aspect ratio (GDAL reads from overviews when they exist). ``bands`` are
    1-based; ``dataset_or_path`` is an open dataset or a path to open.
    """
    if isinstance(dataset_or_path, (str, os.PathLike)):
        with rasterio.open(dataset_or_path) as dataset:
            return read_overview(dataset, bands, max_side, resampling)
    dataset = dataset_or_path
    factor = max(1.0, max(dataset.height, dataset.width) / max_side)
    shape = (len(bands), max(1, round(dataset.height / factor)), max(1, round(dataset.width / factor)))
    return dataset.read(list(bands), out_shape=shape, resampling=Resampling[resampling])


def write_quicklook(
    path: str | os.PathLike[str],
    scene_rgb_uint8: np.ndarray,
    combined: np.ndarray,
    lovi_rgba: np.ndarray,
    titles: tuple[str, str, str] = ("scene", "combined saliency", "LOVI"),
    max_side: int = 1024,
) -> None:
    """Write a PNG with three captioned panels side by side.

    ``scene_rgb_uint8`` is uint8 ``[3, h, w]`` (RGB) or ``[1, h, w]`` (grey);
    ``combined`` is float ``[h, w]`` in [0, 1] with NaN for nodata, shown with
    the magma colormap and nodata grey; ``lovi_rgba`` is uint8 ``[4, h, w]``
    with alpha 0 for nodata, shown over grey. The arrays may differ in size but
    should cover the same extent; each panel has the scene's aspect ratio and
    its longer side is at most ``max_side`` pixels (arrays are decimated to it).
    """
    height, width = scene_rgb_uint8.shape[-2:]
    factor = max(1.0, max(height, width) / max_side)
    panel_h, panel_w = max(1, round(height / factor)), max(1, round(width / factor))
    scene = _decimate(scene_rgb_uint8, max_side)
    scene = np.repeat(scene, 3, axis=0) if scene.shape[0] == 1 else scene
    images = [
        (np.moveaxis(scene, 0, -1), {}),
        (np.ma.masked_invalid(_decimate(combined[None], max_side)[0]),
         {"cmap": _magma_with_grey_nodata(), "vmin": 0.0, "vmax": 1.0}),
        (np.moveaxis(_decimate(lovi_rgba, max_side), 0, -1), {}),
    ]
    figure = Figure(figsize=(3 * panel_w / _DPI, (panel_h + _CAPTION_PX) / _DPI), dpi=_DPI)
    figure.patch.set_facecolor("white")
    caption = _CAPTION_PX / (panel_h + _CAPTION_PX)
    for i, ((image, style), title) in enumerate(zip(images, titles)):
        axes = figure.add_axes((i / 3, 0, 1 / 3, 1 - caption))
        axes.set_facecolor(_NODATA_GREY)
        axes.imshow(image, interpolation="nearest", aspect="auto", **style)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.spines[:].set_visible(False)
        figure.text((i + 0.5) / 3, 1 - caption / 2, title, ha="center", va="center", fontsize=10)
    figure.savefig(os.fspath(path), dpi=_DPI, facecolor="white")


def _decimate(array: np.ndarray, max_side: int) -> np.ndarray:
    """Keep every n-th pixel of ``[bands, h, w]`` so the longer side is at most ``max_side``."""
    step = max(1, -(-max(array.shape[-2:]) // max_side))
    return array[:, ::step, ::step]


def _magma_with_grey_nodata() -> Colormap:
    return matplotlib.colormaps["magma"].with_extremes(bad=_NODATA_GREY)
