"""Real Dask processes on 127.0.0.1 for the reliability tests, and the pause points that time the kills.

A :class:`Loopback` is a ``dask scheduler`` and ``dask worker`` processes
started as a deployment would start them (``--no-nanny``, so that killing a
worker's pid kills the worker and nothing restarts it behind the test's back).
Every process gets the environment of :func:`process_env`: this checkout first
on ``PYTHONPATH`` (the shared virtual environment has an editable install of
another one) and the pause variables of :mod:`geosal.pipeline.pause` pointing
at the cluster's pause folder, where :class:`Pauses` arms one point at a time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rasterio
import zarr
from distributed import Client

from tests.paths import PROJECT

DASK = str(Path(sys.executable).parent / "dask")
WORKER_POINTS = ("plugin-setup", "pass1", "pass2", "overview1")
CLIENT_POINTS = ("statistics", "export", "next-scene")
POINTS = WORKER_POINTS + CLIENT_POINTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(pause_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a geosal or Dask process started by a test."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for name in ("GEOSAL_PAUSE_AT", "GEOSAL_PAUSE_DIR"):
        env.pop(name, None)
    if pause_dir is not None:
        env.update(GEOSAL_PAUSE_AT=",".join(POINTS), GEOSAL_PAUSE_DIR=str(pause_dir), GEOSAL_PAUSE_S="120")
    env.update(extra)
    return env


class Pauses:
    """The pause folder: :meth:`arm` one point (every other point passes at once), :meth:`wait` for the process
    that paused there, :meth:`release` it."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.disarm()

    def disarm(self) -> None:
        """Let every process pass every point."""
        for point in POINTS:
            (self.folder / f"{point}.release").touch()
            (self.folder / point).write_text("0")

    def arm(self, point: str) -> None:
        """The next process to reach ``point`` pauses there (every other point stays passable)."""
        self.disarm()
        (self.folder / point).unlink()
        (self.folder / f"{point}.release").unlink()

    def wait(self, point: str, timeout: float = 120, cli: Cli | None = None) -> int:
        """The pid of the process paused at ``point`` (failing early, with its output, when ``cli`` ends first)."""
        marker = self.folder / point
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker.exists():
                return int(marker.read_text())
            if cli is not None and cli.process.poll() is not None:
                code, out, err = cli.finish()
                raise AssertionError(f"the command ended ({code}) before the pause point {point}:\n{out}\n{err}")
            time.sleep(0.02)
        raise AssertionError(f"nothing reached the pause point {point} within {timeout} s")

    def release(self, point: str) -> None:
        (self.folder / f"{point}.release").touch()


class Loopback:
    """A scheduler and named workers on 127.0.0.1 (see the module docstring)."""

    def __init__(self, pause_dir: Path, worker_env: dict[str, str] | None = None, cwd: Path = PROJECT):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.pauses = Pauses(pause_dir)
        self.env = process_env(pause_dir, **(worker_env or {}))
        self.cwd = cwd
        self.workers: dict[str, subprocess.Popen] = {}
        self.scheduler: subprocess.Popen | None = None

    def start_scheduler(self) -> None:
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
            cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_worker(self, name: str) -> None:
        self.workers[name] = subprocess.Popen(
            [DASK, "worker", self.address, "--nthreads", "1", "--name", name, "--no-nanny", "--no-dashboard",
             "--memory-limit", "4GiB", "--death-timeout", "20"],
            cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ensure_workers(self, names=("w1", "w2"), timeout: float = 90) -> None:
        """Start the named workers that are not running, and wait until the scheduler sees them all."""
        for name in names:
            process = self.workers.get(name)
            if process is None or process.poll() is not None:
                self.start_worker(name)
        with Client(self.address, timeout="30s") as client:
            deadline = time.monotonic() + timeout
            while set(names) - {w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}:
                assert time.monotonic() < deadline, "the workers did not join"
                time.sleep(0.1)

    def kill_pid(self, pid: int) -> str:
        """SIGKILL the worker whose pid is ``pid``; returns its name."""
        for name, process in self.workers.items():
            if process.pid == pid:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return name
        raise AssertionError(f"pid {pid} is not a worker of this cluster")

    def kill_worker(self, name: str) -> None:
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait()

    def kill_all(self) -> None:
        for process in [*self.workers.values(), *([self.scheduler] if self.scheduler else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()

    def __enter__(self) -> Loopback:
        self.start_scheduler()
        return self

    def __exit__(self, *exc) -> None:
        self.kill_all()


def output_arrays(folder: Path) -> dict[str, np.ndarray]:
    """Every array of a scene output that could differ: the store's maps and the COGs' pixels and masks."""
    store = zarr.open_group(str(folder / "saliency.zarr"), mode="r")
    found = {name: store[name][:] for name in store.array_keys() if not name.startswith(("x", "y", "spatial_ref"))}
    for layer in ("combined", "lovi"):
        with rasterio.open(folder / f"{layer}.tif") as cog:
            found[f"{layer}.tif"] = cog.read()
            found[f"{layer}.tif mask"] = cog.dataset_mask()
            for level, factor in enumerate(cog.overviews(1), start=1):
                found[f"{layer}.tif overview {level}"] = cog.read(out_shape=(cog.count, -(-cog.height // factor),
                                                                             -(-cog.width // factor)))
    return found


def assert_identical(folder: Path, reference: Path) -> None:
    """``folder`` holds exactly the arrays of ``reference`` (bit for bit, NaN where NaN)."""
    ours, theirs = output_arrays(folder), output_arrays(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


class Cli:
    """``python -m geosal.cli ARGS`` as a separate process, its output read as it comes."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path = PROJECT):
        self.process = subprocess.Popen([sys.executable, "-m", "geosal.cli", *args], cwd=cwd, env=env or process_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        """Wait until ``text`` appears on stderr."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.err):
            assert self.process.poll() is None or any(text in line for line in self.err), "".join(self.err)
            assert time.monotonic() < deadline, f"{text!r} not printed within {timeout} s: {''.join(self.err)}"
            time.sleep(0.05)

    def finish(self, timeout: float = 240) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once the process ended."""
        code = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join()
        return code, "".join(self.out), "".join(self.err)


def error_lines(err: str) -> list[str]:
    """The lines geosal printed on stderr (progress bars and Dask's own log lines aside)."""
    return [line for line in err.replace("\r", "\n").splitlines() if line.startswith("geosal:")]
