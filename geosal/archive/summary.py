"""``OUT/summary.json``: every scene's status, counts, timings and output size, plus totals."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import geosal
from geosal.archive.outcome import ArchiveResult
from geosal.raster.objects import write_text


def summary_dict(result: ArchiveResult, archive: str = "") -> dict:
    """The summary as plain data.

    Keys: ``geosal_version``, ``archive``, ``out``, ``finished`` (UTC ISO
    time), ``totals`` (see :meth:`ArchiveResult.totals`) and ``scenes``: one
    record per scene (see :class:`~geosal.archive.outcome.SceneOutcome`;
    seconds in wall seconds, sizes in bytes, throughput in tiles per second).
    """
    return {
        "geosal_version": geosal.__version__,
        "archive": archive,
        "out": str(result.out),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "totals": result.totals(),
        "scenes": [o.to_dict() for o in result.outcomes],
    }


def write_summary(path: str | Path, result: ArchiveResult, archive: str = "") -> str | Path:
    """Write :func:`summary_dict` as indented JSON to ``path`` (a path, or an ``s3://`` URL); returns ``path``."""
    write_text(path, json.dumps(summary_dict(result, archive), indent=2) + "\n")
    return path
