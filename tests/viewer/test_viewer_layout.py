"""Grids come from the store, never from assumptions: maps on a coarser grid than the working grid are served
on their own grid, and blocks tile the working grid whether or not the store records it."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from geosal.raster.store import ArraySpec, GridSpec, create_store, mark_block_done, write_region
from geosal.viewer.render import tile_data
from geosal.viewer.scene import SceneOutput

WORKING = GridSpec("working", 100, 80, (0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0), 32)


def make_store(folder, with_working_grid: bool):
    """A partial store: combined on the stride-2 grid (50 x 40), scales at strides 2 and 4, ``valid`` on the
    working grid (when ``with_working_grid``), 12 blocks of 32 working pixels, block 4 done."""
    output = WORKING.downsampled(2, "", 16)
    scale_1, scale_2 = WORKING.downsampled(2, "scale_1", 16), WORKING.downsampled(4, "scale_2", 8)
    arrays = [ArraySpec("combined", output, "u2", 65535, attrs=(("scale_factor", 1 / 65534), ("add_offset", 0.0))),
              ArraySpec("scale_1", scale_1, "f4", float("nan")), ArraySpec("scale_2", scale_2, "f4", float("nan"))]
    if with_working_grid:
        arrays.append(ArraySpec("valid", WORKING, "u1", None))
    attrs = {"working_grid": {"height": 100, "width": 80}, "block": 32, "strides": [2, 4], "layers": ["relu", "layer1"]}
    store = folder / "saliency.zarr"
    create_store(store, pyproj.CRS.from_epsg(32616).to_wkt(), arrays, 12, ["scale_1", "scale_2"], attrs)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 65535, (50, 40), dtype=np.uint16)
    codes[0, 0] = 65535
    write_region(store, "combined", 0, 0, codes)
    scale_2 = rng.random((25, 20), dtype=np.float32) * 5
    write_region(store, "scale_2", 0, 0, scale_2)
    mark_block_done(store, 4, np.array([[10, 20.0, 50.0], [5, 12.0, 40.0]]))
    return np.where(codes == 65535, np.nan, codes / 65534), scale_2


@pytest.mark.parametrize("with_working_grid", [True, False])
def test_layers_points_and_blocks_follow_the_recorded_grids(tmp_path, with_working_grid):
    folder = tmp_path / ".scene.partial"
    combined, scale_2 = make_store(folder, with_working_grid)
    scene = SceneOutput(folder, complete=False)
    grid = scene.layers["combined"].source.grid
    assert (grid.height, grid.width, grid.transform.a) == (50, 40, 1.0)  # twice the working pixel
    assert scene.grid.bounds == (1000.0, 1950.0, 1040.0, 2000.0)
    x, y = 1000.0 + 13.5, 2000.0 - 7.2  # combined pixel (row 7, col 13); scale 2 pixel (3, 6)
    point = scene.point(x, y)
    assert (point["row"], point["col"]) == (7, 13)
    assert point["values"]["combined"] == pytest.approx(combined[7, 13], rel=1e-6)  # CF-decoded
    assert scene.point(1000.5, 1999.5)["values"]["combined"] is None  # the fill value
    scale = point["scales"][1]
    assert (scale["row"], scale["col"], scale["raw"]) == (3, 6, pytest.approx(float(scale_2[3, 6]), abs=0))
    boxes = scene.block_boxes()  # 32 working pixels each, from the working grid or derived from scale 1's
    assert len(boxes) == 12
    assert boxes[0] == (1000.0, 1984.0, 1016.0, 2000.0)
    assert boxes[-1] == (1032.0, 1950.0, 1040.0, 1952.0)
    progress = scene.progress()
    assert progress.pass1.tolist() == [i == 4 for i in range(12)]
    assert progress.statistics.mean == pytest.approx((2.0, 12 / 5))
    data, inside = tile_data(scene.layers["combined"], 0, 0, 1)
    assert inside.sum() == 50 * 40
    np.testing.assert_allclose(data[0, :50, :40], combined, rtol=1e-6)
    assert "lovi" not in scene.layers  # no LOVI array and no COG yet
