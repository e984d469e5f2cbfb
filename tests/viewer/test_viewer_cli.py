"""``geosal view`` on the command line: address, Ctrl-C, bad paths and ports; and the lines that point to it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time

from geosal.cli import main
from tests.paths import PROJECT
from tests.viewer.conftest import SINGLE, http_get


def environment() -> dict:
    return {**os.environ, "PYTHONPATH": str(PROJECT), "PYTHONUNBUFFERED": "1"}


def test_view_prints_the_address_serves_and_stops_cleanly_on_ctrl_c(outputs):
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "geosal.cli", "view", str(outputs.single), "--port", "0", "--no-browser"],
                               cwd=PROJECT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        print(f"geosal view answered after {time.perf_counter() - started:.1f} s (rough: shared machine)")
        assert first.startswith(f"geosal: viewing {SINGLE} at http://127.0.0.1:"), first
        url = first.split(" at ")[1].split()[0]
        assert http_get(url + "api/scenes").json()[0]["id"] == SINGLE
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.strip() == "geosal: viewer stopped"
    assert "Traceback" not in err


def test_a_path_without_output_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["view", str(tmp_path), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no geosal output here" in err
    assert main(["view", str(tmp_path / "missing"), "--no-browser"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_a_port_in_use_is_one_line_and_exit_2(outputs, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["view", str(outputs.single), "--port", str(port), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err == f"geosal: error: port {port} on 127.0.0.1 is already in use: choose another with --port (0 picks a free one)\n"


def test_run_and_submit_end_with_the_view_command(outputs):
    assert outputs.run_stdout.rstrip().splitlines()[-1] == f"  look at them: geosal view {shlex.quote(str(outputs.single))}"
    assert outputs.submit_code == 1  # the truncated scene failed; the others are there to look at
    assert outputs.submit_stdout.rstrip().splitlines()[-1] == f"  look at them: geosal view {shlex.quote(str(outputs.archive))}"


def test_the_viewer_does_not_import_torch():
    code = ("import sys; import geosal.cli, geosal.cli.view, geosal.viewer, geosal.viewer.server; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PROJECT, env=environment())
