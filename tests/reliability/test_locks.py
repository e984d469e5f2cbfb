"""Runs that meet on one output: the second refuses in one line and damages nothing; a crashed run's lock is
taken over; the staleness rule of :mod:`geosal.pipeline.lock` on real lock files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from geosal.cli import main
from geosal.pipeline import lock as locks
from geosal.pipeline.lock import LockHeldError, LockOwner, OutputLock
from tests.reliability.conftest import SCENE, SECOND_SCENE, model_options
from tests.reliability.loopback import Cli, Pauses, assert_identical, error_lines, process_env

IN_PROCESS = ["--scheduler", "in-process"]


def paused_cli(args: list[str], folder: Path, point: str = "statistics") -> tuple[Cli, int]:
    """``geosal ARGS`` in its own process, paused at ``point`` (by default when pass 1 is done: nothing else runs
    then, so the output does not change while the test looks at it); returns it and its pid."""
    pauses = Pauses(folder)
    pauses.arm(point)
    cli = Cli(args, env=process_env(folder))
    return cli, pauses.wait(point, cli=cli)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time (ns)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_second_run_into_the_same_output_refuses(reference, archive, tiny_model, tmp_path, capsys):
    out, scene = tmp_path / "out", str(archive / f"{SCENE}.tif")
    first, pid = paused_cli(["run", scene, str(out), *IN_PROCESS, *model_options(tiny_model)], tmp_path / "pauses")
    before = snapshot(out)
    for extra in ([], ["--overwrite"], ["--resume"]):
        code = main(["run", scene, str(out), *IN_PROCESS, *model_options(tiny_model), *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert error_lines(err) == [error_lines(err)[0]] and f"is in use by another geosal run (pid {pid} on " in err, err
    assert snapshot(out) == before  # nothing of the first run touched
    (tmp_path / "pauses" / "statistics.release").touch()
    code, _, err = first.finish()
    assert code == 0, err
    assert_identical(out / SCENE, reference / SCENE)
    assert not (out / f".{SCENE}.lock").exists()


def test_crashed_run_lock_is_taken_over(reference, archive, tiny_model, tmp_path, capsys):
    out, scene = tmp_path / "out", str(archive / f"{SCENE}.tif")
    first, pid = paused_cli(["run", scene, str(out), *IN_PROCESS, *model_options(tiny_model)], tmp_path / "pauses")
    first.process.send_signal(signal.SIGKILL)
    first.finish()
    assert json.loads((out / f".{SCENE}.lock").read_text())["pid"] == pid
    assert main(["run", scene, str(out), *IN_PROCESS, *model_options(tiny_model), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"took over the stale lock of the output {out / SCENE} (pid {pid} on " in printed
    assert f"process {pid} is gone" in printed
    assert_identical(out / SCENE, reference / SCENE)
    assert not (out / f".{SCENE}.lock").exists()


@pytest.mark.slow
def test_two_archives_sharing_an_output_folder(reference, archive, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    first, pid = paused_cli(["submit", str(archive), str(out), *IN_PROCESS, *model_options(tiny_model)], tmp_path / "pauses")
    before = snapshot(out)
    code = main(["submit", str(archive), str(out), *IN_PROCESS, *model_options(tiny_model), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and len(error_lines(err)) == 1, err
    assert error_lines(err)[0].startswith(f"geosal: error: the archive output {out} is in use by another geosal run (pid {pid} on ")
    for name in (SCENE, SECOND_SCENE):  # a single run into one of the archive's scenes: its scene lock refuses
        code = main(["run", str(archive / f"{name}.tif"), str(out), *IN_PROCESS, *model_options(tiny_model)])
        assert code == 2 and f"the output {out / name} is in use by another geosal run (pid {pid}" in capsys.readouterr().err
    assert snapshot(out) == before
    (tmp_path / "pauses" / "statistics.release").touch()
    code, _, err = first.finish()
    assert code == 0, err
    for name in (SCENE, SECOND_SCENE):
        assert_identical(out / name, reference / name)
    assert not list(out.glob(".*lock*"))


def write_lock(path: Path, owner: LockOwner, age: float = 0.0) -> None:
    path.write_text(json.dumps(asdict(owner)))
    then = time.time() - age
    os.utime(path, (then, then))


@pytest.fixture
def other_host() -> LockOwner:
    return replace(LockOwner.here(), host="elsewhere", boot="another-boot", pid=1, token="0123456789abcdef")


def test_lock_of_another_host_is_stale_only_without_heartbeat(tmp_path, other_host):
    path = tmp_path / ".scene.lock"
    write_lock(path, other_host, age=locks.STALE_S / 2)
    with pytest.raises(LockHeldError, match="in use by another geosal run \\(pid 1 on elsewhere since"):
        OutputLock.acquire(path, "the output scene")
    assert json.loads(path.read_text())["token"] == other_host.token  # untouched
    write_lock(path, other_host, age=locks.STALE_S + 5)
    with OutputLock.acquire(path, "the output scene") as lock:
        assert lock.taken_over is not None and "no heartbeat for" in lock.taken_over
        assert json.loads(path.read_text())["token"] == lock.owner.token
    assert not path.exists()


def test_lock_of_a_live_process_here_is_never_stale(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import psutil

        owner = replace(LockOwner.here(), pid=sleeper.pid, process_started=psutil.Process(sleeper.pid).create_time())
        path = tmp_path / ".scene.lock"
        write_lock(path, owner, age=10 * locks.STALE_S)  # an old heartbeat does not matter: the process is alive
        with pytest.raises(LockHeldError, match=f"pid {sleeper.pid} on"):
            OutputLock.acquire(path, "the output scene")
        write_lock(path, replace(owner, process_started=owner.process_started - 1000))  # the pid now is another process
        with OutputLock.acquire(path, "the output scene") as lock:
            assert f"process {sleeper.pid} is gone" in lock.taken_over
    finally:
        sleeper.kill()
        sleeper.wait()


def test_unreadable_lock_refuses(tmp_path):
    path = tmp_path / ".scene.lock"
    path.write_text("not json")
    with pytest.raises(LockHeldError, match="is unreadable"):
        OutputLock.acquire(path, "the output scene")


def test_heartbeat_touches_and_a_taken_over_lock_is_noticed(tmp_path, other_host, monkeypatch):
    monkeypatch.setattr(locks, "HEARTBEAT_S", 0.05)
    monkeypatch.setattr(locks, "_KEEPER", locks._Keeper())  # a heartbeat thread with the short period
    path = tmp_path / ".scene.lock"
    lock = OutputLock.acquire(path, "the output scene")
    old = time.time() - 1000
    os.utime(path, (old, old))
    time.sleep(0.5)
    assert time.time() - path.stat().st_mtime < 5
    lock.check()
    write_lock(path, other_host)  # another run took the lock over (this one was suspended too long)
    time.sleep(0.3)
    assert lock.lost
    with pytest.raises(LockHeldError, match="was taken over by pid 1 on elsewhere"):
        lock.check()
    lock.release()
    assert path.exists()  # not this run's lock any more: left to its owner


def test_concurrent_takeovers_leave_one_holder(tmp_path, other_host):
    """Several processes take over one stale lock at once: exactly one gets it, the others are refused."""
    path = tmp_path / ".scene.lock"
    write_lock(path, other_host, age=locks.STALE_S + 5)
    code = ("import sys; from geosal.pipeline.lock import OutputLock, LockHeldError\n"
            "sys.stdin.readline()\n"  # start together
            "try:\n    lock = OutputLock.acquire(sys.argv[1], 'x'); print('held', flush=True); sys.stdin.read()\n"
            "except LockHeldError:\n    print('refused', flush=True)\n")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=process_env(), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(3)  # let them import
    for racer in racers:
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = sorted(racer.stdout.readline().strip() for racer in racers)
    for racer in racers:
        racer.stdin.close()
        racer.wait(timeout=60)
    assert results == ["held", "refused", "refused"]


def test_a_lock_of_this_process_is_replaced(tmp_path):
    """An earlier run of this process left unfinished (as a test that stands for an interrupted run does): the next
    run of the process takes the output without a word; the earlier one can no longer publish or release it."""
    path = tmp_path / ".scene.lock"
    earlier = OutputLock.acquire(path, "the output scene")
    later = OutputLock.acquire(path, "the output scene")
    assert later.taken_over is None and json.loads(path.read_text())["token"] == later.owner.token
    with pytest.raises(LockHeldError, match="was taken over"):
        earlier.check()
    earlier.release()
    assert path.exists()
    later.release()
    assert not path.exists()
