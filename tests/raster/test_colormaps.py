"""The shipped colormap tables equal matplotlib's, and colouring follows them."""

from __future__ import annotations

import subprocess
import sys

import matplotlib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geosal.raster.colormaps import COLORMAPS, DEFAULT_COLORMAP, apply_colormap, color_indices, colormap
from tests.paths import PROJECT


@pytest.mark.parametrize("name", COLORMAPS)
def test_tables_equal_matplotlib(name):
    expected = np.rint(matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
    table = colormap(name)
    assert table.shape == (256, 3) and table.dtype == np.uint8
    np.testing.assert_array_equal(table, expected)


def test_default_is_magma_and_unknown_names_are_refused():
    assert DEFAULT_COLORMAP == "magma"
    with pytest.raises(KeyError, match="choose one of magma"):
        colormap("jet")
    with pytest.raises(ValueError):
        colormap("magma")[0, 0] = 1  # shared tables are read-only


@given(arrays(np.float32, st.integers(1, 40), elements=st.floats(-2, 3, width=32) | st.just(float("nan"))),
       st.floats(-1, 1), st.floats(0.01, 2))
def test_indices_are_the_linear_ramp_rounded(values, low, span):
    high = low + span
    indices = color_indices(values, low, high)
    for value, index in zip(values, indices):
        if np.isnan(value):
            assert index == 0
        else:
            exact = (float(value) - low) / span * 255  # an independent float64 computation
            assert abs(int(index) - min(max(exact, 0), 255)) <= 0.5 + 1e-3
    assert (np.diff(color_indices(np.sort(values[np.isfinite(values)]), low, high).astype(int)) >= 0).all()


def test_colouring_matches_matplotlib_and_makes_nodata_transparent():
    values = np.array([[0, 64, 128], [191, 255, np.nan]], dtype=np.float32) / 255  # entry k at k / 255 for both
    rgba = apply_colormap(values, "viridis")
    expected = np.rint(matplotlib.colormaps["viridis"](values)[..., :3] * 255).astype(np.uint8)
    np.testing.assert_array_equal(rgba[0, :, :3], expected[0])
    np.testing.assert_array_equal(rgba[1, :2, :3], expected[1, :2])
    assert rgba[..., 3].tolist() == [[255, 255, 255], [255, 255, 0]]
    assert rgba[1, 2].tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(apply_colormap(values * 10, "gray", 0, 10), apply_colormap(values, "gray"))


def test_the_pipeline_no_longer_imports_matplotlib():
    code = ("import sys; import geosal.raster, geosal.pipeline, geosal.cli.run; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PROJECT)
