"""Reading geosal's output layers as a user would: GDAL's band scale, offset and nodata applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


def read_unit_layer(path: str | Path) -> np.ndarray:
    """Band 1 of a [0, 1] layer such as ``combined.tif``: float32, NaN at nodata."""
    with rasterio.open(path) as dataset:
        codes = dataset.read(1, masked=True).astype(np.float32)
        return (codes * dataset.scales[0] + dataset.offsets[0]).filled(np.nan)
