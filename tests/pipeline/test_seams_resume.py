"""Seamless stitching across tiles, and block-level resumption."""

from __future__ import annotations

import numpy as np
import pytest

from geosal.config import load_config
from geosal.pipeline import InProcessExecutor, execute_scene, prepare_scene, run_block, run_scene, runner_key
from tests.outputs import read_unit_layer
from tests.paths import SCENES

SCENE = SCENES / "manila_oam_10cm.tif"


def combined(folder) -> np.ndarray:
    return read_unit_layer(folder / "combined.tif")


def config(tile: int, halo: int = 64, **compute):
    return load_config(overrides={"tiling": {"tile": tile, "halo": halo, "block_tiles": 1},
                                  "compute": {"scheduler": "in-process", **compute}})


@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    """Manila (504 x 504 working pixels) with 128 and 256 px tiles."""
    root = tmp_path_factory.mktemp("seams")
    small = run_scene(SCENE, root / "t128", config(128), progress=False).output
    large = run_scene(SCENE, root / "t256", config(256), progress=False).output
    return combined(small), combined(large)


def boundary_ratio(values: np.ndarray, tile: int) -> float:
    """Mean |difference| of neighbouring pixels across tile boundaries over that elsewhere (rows and columns)."""
    across, elsewhere = [], []
    for image in (values, values.T):
        steps = np.abs(np.diff(image, axis=0))  # steps[r] is between rows r and r + 1
        on_boundary = (np.arange(1, image.shape[0]) % tile) == 0
        across.append(steps[on_boundary])
        elsewhere.append(steps[~on_boundary])
    return float(np.nanmean(np.concatenate([a.ravel() for a in across])) / np.nanmean(np.concatenate([e.ravel() for e in elsewhere])))


def test_no_tile_grid_in_the_combined_map(tiled):
    small, _ = tiled
    ratio = boundary_ratio(small, 128)
    assert ratio < 1.10, f"steps across tile boundaries are {ratio:.3f}x those elsewhere"


def test_two_tile_sizes_agree(tiled):
    small, large = tiled
    difference = np.nanmean(np.abs(small - large))
    assert difference < 0.02, f"mean |combined(128) - combined(256)| = {difference:.4f}"
    assert np.corrcoef(small.ravel(), large.ravel())[0, 1] > 0.98


class CountingExecutor(InProcessExecutor):
    def __init__(self):
        super().__init__()
        self.blocks = []

    def map(self, function, job, indices, *args, stage, model=None):
        if stage == "pass1":
            self.blocks.extend(indices)
        yield from super().map(function, job, indices, *args, stage=stage, model=model)


def run_blocks(prepared, indices) -> None:
    """Pass 1 on some blocks only, as an interrupted run would have left them."""
    job = prepared.job
    for _ in InProcessExecutor().map(run_block, job, indices, stage="pass1", model=runner_key(job)):
        pass


def test_interrupted_run_resumes_only_missing_blocks(tmp_path):
    settings = config(128)
    clean = combined(run_scene(SCENE, tmp_path / "clean", settings, progress=False).output)
    prepared = prepare_scene(SCENE, tmp_path / "resumed", settings)
    total = prepared.plan.n_blocks
    run_blocks(prepared, range(0, total, 2))  # an interrupted run got every other block done
    assert not (tmp_path / "resumed" / "manila_oam_10cm").exists()  # nothing looks complete yet
    executor = CountingExecutor()
    result = execute_scene(prepare_scene(SCENE, tmp_path / "resumed", settings, resume=True), executor, progress=False)
    assert sorted(executor.blocks) == list(range(1, total, 2))
    assert result.blocks_skipped == len(range(0, total, 2))
    np.testing.assert_array_equal(combined(result.output), clean)


def test_resume_refuses_a_partial_run_with_other_settings(tmp_path):
    prepared = prepare_scene(SCENE, tmp_path, config(128))
    run_blocks(prepared, [0])
    from geosal.pipeline import OutputError

    with pytest.raises(OutputError, match="other settings"):
        prepare_scene(SCENE, tmp_path, config(256), resume=True)
