"""What a scene writes, derived from its plan: the Zarr store's arrays and grids, the COG layers.

Grids (all share the scene's CRS; each pixel covers the ground of the working
pixels below it):

- the *output* grid (the store's main grid, dimensions ``y``, ``x``): the
  combined map and Fast-CAM (and LOVI, in its COG only), at ``plan.output_stride``;
- the *working* grid (``y_working``, ``x_working``; the main grid itself when
  the output stride is 1): the ``valid`` mask of the source pixels;
- one grid per raw map (``scale_k`` at its stride; ``cam`` at the last scale's);
- the preview grid, at ``plan.preview_stride``.

Every array is chunked one block core per chunk, so each block writes whole
chunks. The COG layers (:func:`cog_layouts`) lie on the output grid in tiles of
``plan.cog_tile``.

Values in [0, 1] are stored as integer codes with a scale (the study behind the
choice: ``workflows/bench_output_size.py``): in the store as uint16 (code
``round(v * 65534)``, 65535 = nodata, CF ``scale_factor`` 1/65534: within 7.7e-6;
xarray decodes them to floats with NaN, GDAL reports the scale), in the COGs as
uint8 (``round(v * 254)``, 255 = nodata, band scale 1/254: 256 levels, the map
to look at; QGIS applies the scale).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from geosal.pipeline.plan import ScenePlan
from geosal.raster.cog_tiles import CogLayout
from geosal.raster.store import (
    CAM,
    COMBINED,
    FAST_CAM,
    LOVI,
    PREVIEW,
    VALID,
    ArraySpec,
    GridSpec,
)

COG_COMPRESSION = "deflate"
"""Compression of the COG tiles: DEFLATE (zlib streams), which every TIFF reader decodes."""
STORE_CODES = 65534
"""Largest uint16 code of a [0, 1] value in the store (1.0); ``STORE_CODES + 1`` is nodata."""
LOVI_JPEG_QUALITY = 90
"""JPEG quality of ``lovi.tif``."""
COG_CODES = 254
"""Largest uint8 code of a [0, 1] value in the COGs (1.0); ``COG_CODES + 1`` is nodata."""


def unit_codes(values: torch.Tensor, top: int, dtype: np.dtype) -> np.ndarray:
    """``values`` in [0, 1] (NaN = nodata) as integer codes ``round(v * top)``, ``top + 1`` for NaN."""
    codes = torch.nan_to_num(values.clamp(0, 1) * top, nan=top + 1).round_()
    return codes.numpy().astype(dtype)


def decode_units(codes: np.ndarray, top: int) -> np.ndarray:
    """Inverse of :func:`unit_codes`: float32 in [0, 1], NaN for the nodata code."""
    return np.where(codes > top, np.float32(np.nan), codes.astype(np.float32) / np.float32(top))


class SceneGrids(NamedTuple):
    """The grids of a scene's store (see the module docstring)."""

    working: GridSpec
    output: GridSpec
    maps: dict[str, GridSpec]
    preview: GridSpec


def scene_grids(plan: ScenePlan) -> SceneGrids:
    """The grids of ``plan``'s outputs, chunked one block core per chunk."""
    transform = tuple(plan.grid.transform(plan.scene)[:6])
    name = "working" if plan.output_stride > 1 else ""
    working = GridSpec(name, plan.grid.height, plan.grid.width, transform, plan.block)
    output = working.downsampled(plan.output_stride, "", plan.block_output) if name else working
    maps = {s.name: working.downsampled(s.stride, s.name, plan.block // s.stride) for s in plan.scales}
    if plan.fast_cam_class is not None:
        stride = plan.scales[-1].stride
        maps[CAM] = working.downsampled(stride, CAM, plan.block // stride)
    preview = working.downsampled(plan.preview_stride, PREVIEW, plan.block // plan.preview_stride)
    return SceneGrids(working, output, maps, preview)


def map_names(plan: ScenePlan) -> list[str]:
    """The raw maps pass 1 writes and keeps statistics of: the scales, finest first, then the CAM."""
    return [s.name for s in plan.scales] + ([CAM] if plan.fast_cam_class is not None else [])


def output_layers(plan: ScenePlan) -> list[str]:
    """The layers pass 2 renders on the output grid (each a COG; all but LOVI also in the store)."""
    return [COMBINED, LOVI] + ([FAST_CAM] if plan.fast_cam_class is not None else [])


def store_arrays(plan: ScenePlan) -> list[ArraySpec]:
    """Every data array of the scene's ``saliency.zarr``."""
    grids = scene_grids(plan)
    unit = (("units", "1"), ("scale_factor", 1 / STORE_CODES), ("add_offset", 0.0), ("valid_min", 0),
            ("valid_max", STORE_CODES))
    arrays = [ArraySpec(COMBINED, grids.output, "u2", STORE_CODES + 1, delta=True,
                        attrs=(("long_name", "combined saliency"), *unit))]
    if plan.fast_cam_class is not None:
        arrays.append(ArraySpec(FAST_CAM, grids.output, "u2", STORE_CODES + 1, delta=True,
                                attrs=(("long_name", "Fast-CAM: combined saliency x class map"), *unit)))
    arrays.append(ArraySpec(VALID, grids.working, "u1", None,
                            attrs=(("long_name", "source pixel is valid data (1) or nodata (0)"),)))
    for name, grid in grids.maps.items():
        label = "raw Grad-CAM of the Fast-CAM class" if name == CAM else f"raw saliency statistic, {name}"
        arrays.append(ArraySpec(name, grid, "f4", float("nan"), attrs=(("long_name", label),)))
    bands = tuple(f"input_{b}" for b in range(1, plan.preview_bands + 1))
    arrays.append(ArraySpec(PREVIEW, grids.preview, "u1", None, bands=bands, band_dim="preview_band",
                            attrs=(("long_name", "the model's input, block-averaged (scene-wide scaling)"),)))
    return arrays


def cog_layouts(plan: ScenePlan) -> dict[str, CogLayout]:
    """The COG of each output layer, on the output grid in tiles of ``plan.cog_tile``: the [0, 1] maps as
    uint8 codes (see the module docstring), DEFLATE with the horizontal predictor; LOVI, a rendering, as RGB
    JPEG (quality :data:`LOVI_JPEG_QUALITY`, YCbCr) with an internal mask where there is no data, what
    GDAL's COG driver makes of an RGBA image: 0.1 bytes per pixel instead of 0.7 lossless, a mean error of
    about one level in 255 (``workflows/bench_output_size.py``). Pass 2 hands every layout RGBA / code pixels."""
    output = scene_grids(plan).output
    common = {"width": output.width, "height": output.height, "crs_wkt": plan.scene.crs_wkt, "transform": output.affine,
              "tile": plan.cog_tile, "compression": COG_COMPRESSION}
    unit = {"bands": 1, "dtype": "uint8", "predictor": 2, "nodata": COG_CODES + 1, "scales": (1 / COG_CODES,),
            "offsets": (0.0,)}
    layouts = {
        COMBINED: CogLayout(descriptions=("combined saliency",), **unit, **common),
        LOVI: CogLayout(bands=4, dtype="uint8", photometric="rgb", mask=True, **{**common, "compression": "jpeg"},
                        compression_level=LOVI_JPEG_QUALITY),
    }
    if plan.fast_cam_class is not None:
        layouts[FAST_CAM] = CogLayout(descriptions=("Fast-CAM",), **unit, **common)
    return layouts
