"""Fixtures of the reliability tests: a tiny model, a loopback cluster, and reference outputs of clean runs.

The tiny network (``workflows/tiny_network.py``, loaded through the model
factory) keeps each run to a few seconds on two busy cores: what these tests
exercise is everything around the network. Scenes are real ones, linked from
``../shared/data/scenes`` into temporary folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from geosal.cli import main
from tests.paths import SCENES
from tests.reliability.loopback import Loopback
from workflows.tiny_network import save

SCENE = "manila_oam_10cm"
SECOND_SCENE = "colorado_hro_15cm_small"
TILING = ["--tile", "128", "--halo", "32", "--block-tiles", "1", "--batch-size", "1"]
"""16 pass-1 and pass-2 tasks for the Manila scene (504 x 504 working pixels), COGs with two overview levels."""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny network's seeded weights."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    save(path)
    return path


def model_options(weights: Path) -> list[str]:
    """Command-line options of the tiny model with ``weights`` (a copy elsewhere is another model plugin)."""
    return ["--model", str(weights), "--model-factory", "workflows.tiny_network:build", "--gsd", "0.406", *TILING]


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Path:
    """A folder with the two real scenes the tests run (symlinks)."""
    folder = tmp_path_factory.mktemp("scenes")
    for name in (SCENE, SECOND_SCENE):
        (folder / f"{name}.tif").symlink_to(SCENES / f"{name}.tif")
    return folder


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A scheduler and two workers on loopback, shared by the tests (each restarts the workers it kills)."""
    with Loopback(tmp_path_factory.mktemp("pauses")) as loopback:
        loopback.ensure_workers()
        yield loopback


@pytest.fixture(scope="session")
def reference(cluster, archive, tiny_model, tmp_path_factory) -> Path:
    """A clean ``geosal submit`` of :func:`archive` on the cluster: the folder of every scene's reference output."""
    out = tmp_path_factory.mktemp("reference")
    assert main(["submit", str(archive), str(out), "--scheduler", cluster.address, *model_options(tiny_model)]) == 0
    return out


def copy_model(tiny_model: Path, folder: Path, name: str) -> Path:
    """The tiny model's weights under another path: the same network, registered as a new plugin."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(tiny_model, folder / name))
