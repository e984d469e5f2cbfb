"""Fixtures of the storage tests: the HTTP range server and moto's S3 server on 127.0.0.1, the tiny model, real
scenes (and a COG with overviews made from one), and a loopback Dask cluster whose workers log to files.

The test process holds no AWS variables in its environment except while an
in-process command runs (set for that call by ``monkeypatch``); the other
geosal commands run as processes given the moto server's variables
(:meth:`MotoServer.env`), and the Dask workers get none at all; the
workers' own variables point at a closed port on 127.0.0.1, so a worker that
did not receive the client's storage access (the plugin) fails its request
instead of reaching any other host.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import rasterio
from affine import Affine
from rasterio.shutil import copy as copy_raster

from tests.paths import SCENES
from tests.reliability.loopback import DASK, Loopback, free_port
from tests.storage.servers import MotoServer, RangeServer
from workflows.tiny_network import save

SCENE = "manila_oam_10cm"
TILING = ["--tile", "128", "--halo", "32", "--block-tiles", "1", "--batch-size", "1"]
"""16 pass-1 and pass-2 tasks for the Manila scene (504 x 504 working pixels)."""
BUCKET = "geosal"
DEAD_END = f"127.0.0.1:{free_port()}"
"""A closed port: where a worker's own S3 requests would go."""


def model_options(weights: Path) -> list[str]:
    """Command-line options of the tiny model with ``weights``."""
    return ["--model", str(weights), "--model-factory", "workflows.tiny_network:build", "--gsd", "0.406", *TILING]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    save(path)
    return path


@pytest.fixture(scope="session")
def scene() -> Path:
    return SCENES / f"{SCENE}.tif"


@pytest.fixture(scope="session")
def cog_with_overviews(tmp_path_factory, scene) -> Path:
    """The Manila scene at 5 cm (each pixel repeated 2 x 2: 4,096 px square, beyond the 4 M pixels the scaling
    sample reads at full resolution) as a JPEG COG of 256 px tiles with overviews (GDAL's COG driver)."""
    folder = tmp_path_factory.mktemp("cog")
    with rasterio.open(scene) as source:
        data = source.read().repeat(2, axis=1).repeat(2, axis=2)
        profile = {**source.profile, "height": data.shape[1], "width": data.shape[2], "transform": source.transform * Affine.scale(0.5),
                   "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "photometric": "RGB"}
    plain = folder / "manila_5cm.tif"
    with rasterio.open(plain, "w", **profile) as target:
        target.write(data)
    path = folder / "manila_cog.tif"
    copy_raster(str(plain), str(path), driver="COG", COMPRESS="JPEG", QUALITY="90", BLOCKSIZE="256", OVERVIEWS="AUTO")
    plain.unlink()
    with rasterio.open(path) as cog:
        assert cog.overviews(1) == [2, 4, 8, 16], cog.overviews(1)
    return path


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    with RangeServer(tmp_path_factory.mktemp("served")) as server:
        yield server


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    with MotoServer(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


class LoggedLoopback(Loopback):
    """A :class:`Loopback` whose scheduler and workers write their logs to files (scanned for secrets)."""

    def __init__(self, folder: Path):
        super().__init__(folder / "pauses", worker_env={
            "AWS_S3_ENDPOINT": DEAD_END, "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_NO_SIGN_REQUEST": "YES",
            "AWS_ENDPOINT_URL": f"http://{DEAD_END}", "AWS_EC2_METADATA_DISABLED": "true"})
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _log(self, name: str):
        return open(self.logs / f"{name}.log", "ab")

    def start_scheduler(self) -> None:
        with self._log("scheduler") as log:
            self.scheduler = subprocess.Popen(
                [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def start_worker(self, name: str) -> None:
        with self._log(name) as log:
            self.workers[name] = subprocess.Popen(
                [DASK, "worker", self.address, "--nthreads", "1", "--name", name, "--no-nanny", "--no-dashboard",
                 "--memory-limit", "4GiB", "--death-timeout", "20"],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A scheduler and two workers on loopback, without any AWS configuration of their own."""
    with LoggedLoopback(tmp_path_factory.mktemp("cluster")) as loopback:
        loopback.ensure_workers()
        yield loopback
