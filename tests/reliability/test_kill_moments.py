"""A worker killed (SIGKILL) at each moment of a run on a real loopback cluster: the run finishes, identically.

Each moment is reached deterministically through a pause point
(:mod:`geosal.pipeline.pause`): a worker pauses while it sets up the model
plugin (the scheduler is then broadcasting the registration), at the start of
a pass-1, pass-2 or overview task; the client pauses at the start of the
statistics or the export, or between two scenes of an archive. The test kills
the worker that paused (or, at a client moment, a worker), releases the
client, and compares every array and COG with a clean run's, bit for bit.
"""

from __future__ import annotations

import threading

import pytest
from distributed import Client

from geosal.cli import main
from geosal.cluster import model_constructions
from tests.reliability.conftest import SCENE, SECOND_SCENE, copy_model, model_options
from tests.reliability.loopback import WORKER_POINTS, assert_identical

REPEATS = 3
MOMENTS = [
    pytest.param(moment, repeat, id=f"{moment}-{repeat}", marks=[pytest.mark.slow] if repeat else [])
    for moment in ("plugin-setup", "pass1", "pass2", "overview1", "export") for repeat in range(REPEATS)
] + [pytest.param("statistics", 0, id="statistics-0")]


@pytest.fixture(autouse=True)
def client_pauses(cluster, monkeypatch):
    """The client (this process) pauses at the client moments too."""
    for name in ("GEOSAL_PAUSE_AT", "GEOSAL_PAUSE_DIR", "GEOSAL_PAUSE_S"):
        monkeypatch.setenv(name, cluster.env[name])


def run_in_thread(argv: list[str]) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("code", main(argv)), daemon=True)
    thread.start()
    return thread, result


def kill_at(cluster, point: str) -> None:
    """Wait for the pause at ``point``, kill the worker that paused there (at a client moment: ``w1``), release
    the pause, and start a replacement worker, which joins while the run goes on."""
    pid = cluster.pauses.wait(point)
    if point in WORKER_POINTS:
        name = cluster.kill_pid(pid)
    else:
        name = "w1"
        cluster.kill_worker(name)
    cluster.pauses.release(point)
    cluster.start_worker(name)


@pytest.mark.parametrize("moment, repeat", MOMENTS)
def test_worker_killed_at_moment(cluster, reference, archive, tiny_model, tmp_path, capfd, moment, repeat):
    cluster.ensure_workers()
    # a new path for the weights: a model the workers have not seen, so its plugin is registered during this run
    weights = copy_model(tiny_model, tmp_path / "model", f"tiny-{moment}-{repeat}.pt")
    cluster.pauses.arm(moment)
    thread, result = run_in_thread(["run", str(archive / f"{SCENE}.tif"), str(tmp_path / "out"), "--scheduler",
                                    cluster.address, *model_options(weights)])
    kill_at(cluster, moment)
    thread.join(timeout=240)
    err = capfd.readouterr().err
    assert result.get("code") == 0, err
    assert "Traceback" not in err and "CommClosedError" not in err, err
    assert_identical(tmp_path / "out" / SCENE, reference / SCENE)
    if moment == "plugin-setup":  # the killed worker comes back and gets the plugin from the scheduler
        cluster.ensure_workers()
        with Client(cluster.address) as client:
            assert all(count >= 1 for count in client.run(model_constructions).values())


@pytest.mark.parametrize("repeat", [pytest.param(r, marks=[pytest.mark.slow] if r else []) for r in range(REPEATS)])
def test_worker_killed_between_archive_scenes(cluster, reference, archive, tiny_model, tmp_path, capfd, repeat):
    cluster.ensure_workers()
    cluster.pauses.arm("next-scene")
    out = tmp_path / "out"
    thread, result = run_in_thread(["submit", str(archive), str(out), "--scheduler", cluster.address,
                                    "--max-scenes-in-flight", "1", *model_options(tiny_model)])
    kill_at(cluster, "next-scene")
    thread.join(timeout=240)
    err = capfd.readouterr().err
    assert result.get("code") == 0, err
    assert "Traceback" not in err, err
    for name in (SCENE, SECOND_SCENE):
        assert_identical(out / name, reference / name)
