"""Build big benchmark scenes by mosaicking a real scene (never stored in the repository).

    python -m workflows.mosaic SOURCE.tif OUT.tif --size 16384
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import rasterio


def mosaic(source: str | Path, target: str | Path, size: int, block: int = 512) -> Path:
    """Write a ``size x size`` tiled, DEFLATE-compressed GeoTIFF that repeats ``source``.

    The output keeps the source's CRS, pixel size and origin (so the transform
    is valid and the ground sample distance the same); copies are mirrored
    alternately so the mosaic has no hard seams of its own. Written block by
    block: memory stays at one source scene plus one block row.
    """
    with rasterio.open(source) as src:
        data = src.read()
        profile = {
            "driver": "GTiff", "width": size, "height": size, "count": src.count, "dtype": src.dtypes[0],
            "crs": src.crs, "transform": src.transform, "nodata": src.nodata, "tiled": True,
            "blockxsize": block, "blockysize": block, "compress": "deflate", "predictor": 2, "BIGTIFF": "IF_SAFER",
        }
    _, height, width = data.shape
    tiles_y, tiles_x = math.ceil(size / height), math.ceil(size / width)
    row_band = np.concatenate([data[:, :, :: (1 if i % 2 == 0 else -1)] for i in range(tiles_x)], axis=2)[:, :, :size]
    with rasterio.open(target, "w", **profile) as dst:
        for ty in range(tiles_y):
            band = row_band[:, :: (1 if ty % 2 == 0 else -1), :]
            rows = min(height, size - ty * height)
            dst.write(band[:, :rows], window=rasterio.windows.Window(0, ty * height, size, rows))
    return Path(target)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--size", type=int, default=16384)
    args = parser.parse_args(argv)
    print(mosaic(args.source, args.target, args.size))


if __name__ == "__main__":
    main()
