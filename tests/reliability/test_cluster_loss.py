"""The cluster lost mid-run: the scheduler killed, the last worker gone. One line, a resumable partial output,
and ``--resume`` on a new or repopulated cluster finishes with the clean run's output."""

from __future__ import annotations

import json
import time

import pytest
import zarr

from geosal.raster.store import DONE
from tests.reliability.conftest import SCENE, model_options
from tests.reliability.loopback import Cli, Loopback, assert_identical, error_lines

pytestmark = pytest.mark.slow


def run_args(archive, out, address, tiny_model, *extra) -> list[str]:
    return ["run", str(archive / f"{SCENE}.tif"), str(out), "--scheduler", address, *model_options(tiny_model), *extra]


def assert_resumable(out) -> None:
    assert (out / f".{SCENE}.partial" / "saliency.zarr").is_dir()
    assert not (out / SCENE).exists()
    assert not (out / f".{SCENE}.lock").exists()


def wait_for_a_finished_block(out, timeout: float = 120) -> None:
    """Until the partial store records at least one block of pass 1 as done."""
    store = out / f".{SCENE}.partial" / "saliency.zarr"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (zarr.open_array(str(store), path=DONE, mode="r")[:] == 1).any():
                return
        except (FileNotFoundError, KeyError, ValueError):
            pass  # the store or the array is not written yet
        time.sleep(0.1)
    raise AssertionError(f"no block of pass 1 finished within {timeout} s")


def test_scheduler_killed_then_resume_on_a_new_scheduler(reference, archive, tiny_model, tmp_path):
    out = tmp_path / "out"
    with Loopback(tmp_path / "pauses-a") as first:
        first.ensure_workers()
        first.pauses.arm("pass1")
        cli = Cli(run_args(archive, out, first.address, tiny_model))
        first.pauses.wait("pass1")
        wait_for_a_finished_block(out)  # on a busy machine the other worker may not have finished one yet
        first.scheduler.kill()  # the workers are left to find out by themselves
        started = time.monotonic()
        code, _, err = cli.finish(timeout=120)
        waited = time.monotonic() - started
    assert code == 2, err
    assert error_lines(err) == [error_lines(err)[0]] and "lost the Dask scheduler" in error_lines(err)[0], err
    assert "Traceback" not in err, err
    assert waited < 60
    assert_resumable(out)
    with Loopback(tmp_path / "pauses-b") as second:
        second.ensure_workers()
        code, printed, err = Cli(run_args(archive, out, second.address, tiny_model, "--resume")).finish()
    assert code == 0, err
    assert "blocks already done before this run" in printed
    assert_identical(out / SCENE, reference / SCENE)


def test_last_worker_gone_waits_then_fails_and_resumes(cluster, reference, archive, tiny_model, tmp_path):
    out = tmp_path / "out"
    cluster.ensure_workers()
    cluster.pauses.arm("pass1")
    cli = Cli(run_args(archive, out, cluster.address, tiny_model, "--worker-wait", "3"))
    cluster.pauses.wait("pass1")
    cluster.kill_worker("w1")
    cluster.kill_worker("w2")
    code, _, err = cli.finish(timeout=120)
    lines = error_lines(err)
    assert code == 2, err
    assert "no Dask worker left" in lines[0] and "waits up to 3 s" in lines[0], err
    assert lines[1:] == [lines[-1]] and lines[-1].startswith("geosal: error: no Dask worker joined within 3 s"), err
    assert "Traceback" not in err, err
    assert_resumable(out)
    cluster.ensure_workers()
    code, _, err = Cli(run_args(archive, out, cluster.address, tiny_model, "--resume")).finish()
    assert code == 0, err
    assert_identical(out / SCENE, reference / SCENE)


def test_last_worker_gone_then_one_comes_back(cluster, reference, archive, tiny_model, tmp_path):
    out = tmp_path / "out"
    cluster.ensure_workers()
    cluster.pauses.arm("pass1")
    cli = Cli(run_args(archive, out, cluster.address, tiny_model, "--worker-wait", "120"))
    cluster.pauses.wait("pass1")
    cluster.kill_worker("w1")
    cluster.kill_worker("w2")
    cli.wait_for("no Dask worker left")
    cluster.ensure_workers(names=("w1",))
    code, _, err = cli.finish()
    assert code == 0, err
    assert any("is back" in line for line in error_lines(err)), err
    assert "Traceback" not in err, err
    assert_identical(out / SCENE, reference / SCENE)


def test_archive_stops_when_the_cluster_is_lost(cluster, archive, tiny_model, tmp_path):
    out = tmp_path / "out"
    cluster.ensure_workers()
    cluster.pauses.arm("pass1")
    cli = Cli(["submit", str(archive), str(out), "--scheduler", cluster.address, "--max-scenes-in-flight", "1",
               "--worker-wait", "1", *model_options(tiny_model)])
    cluster.pauses.wait("pass1")
    cluster.kill_worker("w1")
    cluster.kill_worker("w2")
    code, _, err = cli.finish()
    cluster.ensure_workers()
    assert code == 2, err
    assert error_lines(err)[-1].startswith("geosal: error: no Dask worker joined within 1 s"), err
    assert "Traceback" not in err, err
    records = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["scenes"]}
    assert [r["status"] for r in records.values()] == ["failed", "failed"]
    assert sorted(r["error"].startswith("not started: ") for r in records.values()) == [False, True]
    assert not list(out.glob(".*lock"))
