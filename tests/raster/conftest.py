"""Fixtures for the raster tests: small GeoTIFFs written into ``tmp_path``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

UTM = CRS.from_epsg(32616)
TRANSFORM = Affine(0.5, 0.0, 733601.0, 0.0, -0.5, 3725139.0)


@pytest.fixture
def write_raster(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``write_raster(name, data [b, h, w] or [h, w], crs=UTM, transform=TRANSFORM, **profile)``
    writes a GeoTIFF into ``tmp_path`` and returns its path; ``crs`` / ``transform`` None leave them out."""

    def write(name: str, data: np.ndarray, crs: CRS | None = UTM, transform: Affine | None = TRANSFORM,
              **profile) -> Path:
        data = np.asarray(data)
        data = data[None] if data.ndim == 2 else data
        options = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2],
                   "dtype": data.dtype, **profile}
        if crs is not None:
            options["crs"] = crs
        if transform is not None:
            options["transform"] = transform
        path = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "w", **options) as dst:
                dst.write(data)
        return path

    return write
