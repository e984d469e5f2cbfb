"""Fixtures for the archive tests: a tiny checkpoint, an archive of every real
scene plus two bad files, and one shared in-process ``geosal submit`` of it.

Everything is written under pytest's temporary folders (scenes are symlinked,
never copied into the repository). The run is shared by the tests that only
read its outputs, so the real scenes go through the network once per session.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torchvision
from rasterio.errors import NotGeoreferencedWarning

from geosal.cli import main
from geosal.models import ModelSpec, save_checkpoint
from tests.outputs import read_unit_layer
from tests.paths import SCENES

GOOD_SCENES = sorted(p.name for p in SCENES.glob("*.tif"))
BAD_SCENES = ("corrupt", "not_georeferenced")


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A seeded, random ResNet-18 with 3 classes saved as a geosal checkpoint (gsd 1 m)."""
    torch.manual_seed(0)
    network = torchvision.models.resnet18(num_classes=3).eval()
    path = tmp_path_factory.mktemp("model") / "resnet18_3.pt"
    save_checkpoint(path, network, ModelSpec(architecture="resnet18", num_classes=3, gsd_m=1.0).to_dict())
    return path


@pytest.fixture(scope="session")
def fast_options(checkpoint) -> list[str]:
    """Command-line options that keep the real scenes quick on 2 busy cores.

    Native resolution, 128 px tiles without halo (no halo overhead: every
    pixel goes through the network once) in blocks of 4 x 4 tiles (few pass 2
    chunks), 8 tiles per forward pass.
    """
    return ["--model", str(checkpoint), "--resample", "native", "--tile", "128", "--halo", "0",
            "--block-tiles", "4", "--batch-size", "8"]


def link_scene(folder: Path, name: str, as_name: str | None = None) -> Path:
    """Symlink the real scene ``name`` into ``folder`` (created) as ``as_name``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (as_name or name)
    target.symlink_to(SCENES / name)
    return target


def write_bad_scenes(folder: Path) -> None:
    """``corrupt.tif`` (a real scene truncated to a third) and ``not_georeferenced.tif``
    (written by rasterio without CRS or transform)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = (SCENES / "florida_neon_10cm_nodata255.tif").read_bytes()
    (folder / "corrupt.tif").write_bytes(data[: len(data) // 3])
    pixels = np.random.default_rng(0).integers(0, 255, (3, 96, 96), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(folder / "not_georeferenced.tif", "w", driver="GTiff", width=96, height=96, count=3,
                           dtype="uint8") as dst:
            dst.write(pixels)


@pytest.fixture(scope="session")
def archive_dir(tmp_path_factory) -> Path:
    """Every real scene (some in subfolders, one with an upper-case ``.TIF``) plus the two bad files."""
    root = tmp_path_factory.mktemp("archive")
    for index, name in enumerate(GOOD_SCENES):
        link_scene(root / ("usa" if index % 2 else "") / ("more" if index % 3 == 0 else ""), name)
    write_bad_scenes(root / "bad")
    return root


def read_summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def combined(folder: Path) -> np.ndarray:
    """The combined map of a scene output folder (``combined.tif`` band 1)."""
    return read_unit_layer(folder / "combined.tif")


@dataclass
class ArchiveRun:
    out: Path
    exit_code: int
    summary: dict


@pytest.fixture(scope="session")
def archive_run(archive_dir, fast_options, tmp_path_factory) -> ArchiveRun:
    """``geosal submit ARCHIVE OUT --scheduler in-process`` over :func:`archive_dir`, once per session."""
    out = tmp_path_factory.mktemp("archive_out") / "out"
    code = main(["submit", str(archive_dir), str(out), *fast_options, "--scheduler", "in-process"])
    return ArchiveRun(out, code, read_summary(out))
