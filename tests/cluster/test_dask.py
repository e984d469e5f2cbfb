"""The scene pipeline on a real Dask scheduler with worker processes on loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import zarr
from distributed import Client

from geosal.cli import main
from geosal.cluster import DaskExecutor, model_constructions
from geosal.config import load_config
from geosal.pipeline import execute_scene, prepare_scene, run_scene
from geosal.raster import done_blocks
from tests.paths import PROJECT, SCENES

SCENE = SCENES / "manila_oam_10cm.tif"
TILING = ["--tile", "128", "--halo", "64", "--block-tiles", "1"]
DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_worker(address: str, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--name", name, "--no-dashboard",
         "--memory-limit", "4GiB", "--death-timeout", "30"],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for_workers(address: str, count: int, timeout: float = 60) -> None:
    with Client(address, timeout="20s") as client:
        client.wait_for_workers(count, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    """``dask scheduler`` and two ``dask worker`` processes, as a deployment would start them."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = {name: start_worker(address, name) for name in ("w1", "w2")}
    try:
        wait_for_workers(address, 2)
        yield address, workers
    finally:
        for process in [*workers.values(), scheduler]:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same scene in-process: the result every distributed run must reproduce."""
    config = load_config(overrides={"tiling": {"tile": 128, "halo": 64, "block_tiles": 1}, "compute": {"scheduler": "in-process"}})
    return run_scene(SCENE, tmp_path_factory.mktemp("in-process"), config, progress=False).output


def arrays(folder: Path) -> dict[str, np.ndarray]:
    store = zarr.open_group(str(folder / "saliency.zarr"), mode="r")
    names = ["combined"] + [n for n in store.array_keys() if n.startswith("scale_")]
    found = {n: store[n][:] for n in names}
    with rasterio.open(folder / "lovi.tif") as lovi:
        found["lovi.tif"] = lovi.read()
        found["lovi.tif mask"] = lovi.dataset_mask()
    return found


def assert_same(folder: Path, reference: Path, atol: float = 1e-6) -> None:
    ours, theirs = arrays(folder), arrays(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=atol, rtol=0, equal_nan=True, err_msg=name)


def test_external_scheduler_matches_in_process(cluster, reference, tmp_path, capsys):
    address, _ = cluster
    assert main(["run", str(SCENE), str(tmp_path), "--scheduler", address, *TILING]) == 0
    assert "using the Dask cluster" in capsys.readouterr().out
    assert_same(tmp_path / "manila_oam_10cm", reference)


def test_one_model_construction_per_worker(cluster, tmp_path):
    address, _ = cluster
    config = load_config(overrides={"tiling": {"tile": 128, "halo": 64, "block_tiles": 1}, "compute": {"scheduler": address}})
    with Client(address) as client:
        executor = DaskExecutor(client)
        run_scene(SCENE, tmp_path / "a", config, executor=executor, progress=False)
        run_scene(SCENE, tmp_path / "b", config, executor=executor, progress=False)  # same model: no new construction
        counts = client.run(model_constructions)
    assert sorted(counts.values()) == [1, 1]


def test_worker_killed_mid_run_still_completes_identically(cluster, reference, tmp_path):
    address, workers = cluster
    config = load_config(overrides={"tiling": {"tile": 128, "halo": 64, "block_tiles": 1}, "compute": {"scheduler": address}})
    prepared = prepare_scene(SCENE, tmp_path, config)
    result = {}
    with Client(address) as client:
        thread = threading.Thread(target=lambda: result.setdefault("r", execute_scene(prepared, DaskExecutor(client), progress=False)))
        thread.start()
        deadline = time.time() + 120
        while done_blocks(prepared.job.store).sum() < 2 and time.time() < deadline:
            time.sleep(0.05)
        workers["w1"].send_signal(signal.SIGKILL)
        workers["w1"].wait()
        thread.join(timeout=300)
    workers["w1"] = start_worker(address, "w1")  # restore the cluster for later tests
    assert "r" in result, "the run did not finish after a worker was killed"
    assert done_blocks(str(result["r"].output / "saliency.zarr")).all()
    assert_same(result["r"].output, reference)
    wait_for_workers(address, 2)


def done_count(store: Path) -> int:
    """Blocks marked done, 0 while the store is still being created."""
    try:
        return int(done_blocks(str(store)).sum())
    except (FileNotFoundError, zarr.errors.BaseZarrError, KeyError, ValueError):
        return 0


def test_client_killed_mid_run_then_resume(cluster, reference, tmp_path):
    address, _ = cluster
    command = [sys.executable, "-m", "geosal.cli", "run", str(SCENE), str(tmp_path), "--scheduler", address, *TILING]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / ".manila_oam_10cm.partial" / "saliency.zarr"
    deadline = time.time() + 180
    while time.time() < deadline and done_count(store) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = int(done_blocks(str(store)).sum())
    total = len(done_blocks(str(store)))
    assert 3 <= done_before < total, "the client was not killed mid-run"
    assert not (tmp_path / "manila_oam_10cm").exists()
    env = {**os.environ}
    resumed = subprocess.run([*command, "--resume"], cwd=PROJECT, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    found = re.search(r"(\d+) of (\d+) blocks already done", resumed.stdout)
    assert found, resumed.stdout
    assert int(found.group(1)) >= done_before and int(found.group(2)) == total
    assert_same(tmp_path / "manila_oam_10cm", reference)


def test_unreachable_scheduler_is_one_clear_error(tmp_path, capsys):
    code = main(["run", str(SCENE), str(tmp_path), "--scheduler", f"tcp://127.0.0.1:{free_port()}", *TILING])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("geosal: error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert not (tmp_path / "manila_oam_10cm").exists()
