"""Grids come from the store, never from assumptions: a store whose combined map lies on a coarser grid than
the working grid (as when it moves to the finest scale's grid) is served on that grid."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from geosal.raster.store import GridSpec, create_store, mark_block_done, write_region
from geosal.viewer.render import tile_data
from geosal.viewer.scene import SceneOutput

WORKING = GridSpec("working", 100, 80, (0.5, 0.0, 1000.0, 0.0, -0.5, 2000.0), 32)


@pytest.fixture
def output(tmp_path):
    folder = tmp_path / ".scene.partial"
    full = WORKING.downsampled(2, "full", 16)  # combined, lovi, valid on the stride-2 grid: 50 x 40
    scales = [WORKING.downsampled(2, "scale_1", 16), WORKING.downsampled(4, "scale_2", 8)]
    attrs = {"working_grid": {"height": 100, "width": 80}, "block": 32, "strides": [2, 4], "layers": ["relu", "layer1"]}
    create_store(folder / "saliency.zarr", pyproj.CRS.from_epsg(32616).to_wkt(), full, scales, n_blocks=12, attrs=attrs)
    rng = np.random.default_rng(0)
    combined = rng.random((50, 40), dtype=np.float32)
    write_region(folder / "saliency.zarr", "combined", 0, 0, combined)
    scale_2 = rng.random((25, 20), dtype=np.float32) * 5
    write_region(folder / "saliency.zarr", "scale_2", 0, 0, scale_2)
    mark_block_done(folder / "saliency.zarr", 4, np.array([[10, 20.0, 50.0], [5, 12.0, 40.0]]))
    return SceneOutput(folder, complete=False), combined, scale_2


def test_layers_points_and_blocks_follow_the_recorded_grids(output):
    scene, combined, scale_2 = output
    assert (scene.layers["combined"].source.grid.height, scene.layers["combined"].source.grid.width) == (50, 40)
    assert scene.layers["combined"].source.grid.transform.a == 1.0  # twice the working pixel
    assert scene.grid.bounds == (1000.0, 1950.0, 1040.0, 2000.0)
    x, y = 1000.0 + 13.5 * 1.0, 2000.0 - 7.2 * 1.0  # combined pixel (row 7, col 13); scale 2 pixel (3, 6)
    point = scene.point(x, y)
    assert (point["row"], point["col"]) == (7, 13)
    assert point["values"]["combined"] == pytest.approx(float(combined[7, 13]), abs=0)
    scale = point["scales"][1]
    assert (scale["row"], scale["col"], scale["raw"]) == (3, 6, pytest.approx(float(scale_2[3, 6]), abs=0))
    boxes = scene.block_boxes()  # blocks tile the working grid (32 working px), whatever grid combined is on
    assert len(boxes) == 12
    assert boxes[0] == (1000.0, 1984.0, 1016.0, 2000.0)
    assert boxes[-1] == (1032.0, 1950.0, 1040.0, 1952.0)
    progress = scene.progress()
    assert progress.pass1.tolist() == [i == 4 for i in range(12)]
    assert progress.statistics.mean == pytest.approx((2.0, 12 / 5))
    data, inside = tile_data(scene.layers["combined"], 0, 0, 1)
    assert inside.sum() == 50 * 40
    np.testing.assert_array_equal(data[0, :50, :40], combined)
