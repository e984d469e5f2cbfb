"""Regenerate ``geosal/raster/colormaps.json``, the colormap tables geosal ships.

    python -m workflows.make_colormaps

Each colormap is matplotlib's, sampled at its 256 entries and rounded to
uint8 (what ``matplotlib.colormaps[name](np.arange(256))`` gives, times 255),
stored as 768 hex-encoded bytes (R, G, B per entry). geosal reads the file with
numpy alone, so neither the pipeline nor the viewer imports matplotlib;
``tests/raster/test_colormaps.py`` checks the file against matplotlib.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np

from geosal.raster.colormaps import COLORMAPS, TABLE_FILE


def matplotlib_table(name: str) -> np.ndarray:
    """``[256, 3]`` uint8: matplotlib's colormap ``name`` at each of its 256 entries."""
    return np.rint(matplotlib.colormaps[name].resampled(256)(np.arange(256))[:, :3] * 255).astype(np.uint8)


def main() -> Path:
    tables = {name: matplotlib_table(name).tobytes().hex() for name in COLORMAPS}
    TABLE_FILE.write_text(json.dumps({"source": f"matplotlib {matplotlib.__version__}", "tables": tables}, indent=1) + "\n")
    return TABLE_FILE


if __name__ == "__main__":
    print(main())
