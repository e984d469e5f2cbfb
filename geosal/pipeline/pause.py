"""Pause points: a stage waits at a named moment so that a reliability test can kill a process exactly there.

Off unless ``GEOSAL_PAUSE_AT`` is set (then a pause point costs one environment
lookup). The variable holds a comma-separated list of point names:

- ``plugin-setup``: a Dask worker building the model plugin (during its registration);
- ``pass1``, ``pass2``, ``overview1``, ``overview2``, ...: a task of that stage starting on a worker
  (or in-process);
- ``statistics``, ``export``: the client starting that stage of a scene;
- ``next-scene``: an archive about to start a scene other than its first.

The first process to reach a listed point creates ``$GEOSAL_PAUSE_DIR/<point>``
holding its pid, and waits until ``$GEOSAL_PAUSE_DIR/<point>.release`` exists
(at most ``$GEOSAL_PAUSE_S`` seconds, default 120); every later arrival at that
point passes at once. A test waits for the marker, kills the process it names
(or another one), then creates the release file.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


def pause_point(name: str) -> None:
    """Wait here if ``GEOSAL_PAUSE_AT`` names ``name`` and no process has paused at it yet (see the module docstring)."""
    points = os.environ.get("GEOSAL_PAUSE_AT")
    if not points or name not in points.split(","):
        return
    folder = Path(os.environ.get("GEOSAL_PAUSE_DIR", "."))
    draft = folder / f".{name}.{os.getpid()}.{threading.get_ident()}"
    draft.write_text(str(os.getpid()))
    try:
        os.link(draft, folder / name)  # atomic: exactly one process pauses, and its marker is complete when seen
    except FileExistsError:
        return
    finally:
        draft.unlink()
    release = folder / f"{name}.release"
    deadline = time.monotonic() + float(os.environ.get("GEOSAL_PAUSE_S", "120"))
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
