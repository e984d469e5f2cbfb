"""The source blocks a run could not read and wrote as nodata (``--skip-bad-blocks``).

A pass-1 task that read around unreadable source blocks records them in
``.bad_blocks/<block>.json`` of the scene's partial output folder (one file per
pass-1 block, rewritten identically by a retried task, kept by ``--resume``);
the client collects them when the scene is exported: they go into the run
metadata, the STAC Item, the scene result and the archive summary.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from geosal.pipeline.job import SceneJob
from geosal.raster.damaged import SourceBlock

FOLDER = ".bad_blocks"
"""Folder of the records in the scene's partial output folder."""


def _folder(job: SceneJob) -> Path:
    return Path(os.path.dirname(job.store)) / FOLDER


def record_bad_blocks(job: SceneJob, index: int, blocks: tuple[SourceBlock, ...]) -> None:
    """Record that pass-1 block ``index`` read around ``blocks`` (written atomically; nothing when empty)."""
    if not blocks:
        return
    folder = _folder(job)
    folder.mkdir(exist_ok=True)
    draft = folder / f".{index}.{os.getpid()}"
    draft.write_text(json.dumps([b.as_dict() for b in blocks]))
    os.replace(draft, folder / f"{index}.json")


def collect_bad_blocks(job: SceneJob) -> list[dict[str, int]]:
    """Every unreadable source block recorded for the scene, once each (blocks meet several pass-1 blocks'
    reads through their halos), in row-major order: ``{"row", "col", "x", "y", "width", "height"}``."""
    folder = _folder(job)
    found = {}
    for path in folder.glob("*.json") if folder.is_dir() else ():
        for block in json.loads(path.read_text()):
            found[(block["row"], block["col"])] = block
    return [found[key] for key in sorted(found)]


def remove_records(job: SceneJob) -> None:
    """Remove the records from the partial output folder (after they went into the outputs)."""
    shutil.rmtree(_folder(job), ignore_errors=True)


def describe_bad_blocks(blocks: list[dict[str, int]]) -> str:
    """The note for the user: how many source blocks were unreadable and written as nodata, and the first ones."""
    shown = "; ".join(SourceBlock(**b).describe() for b in blocks[:3])
    more = f"; and {len(blocks) - 3} more" if len(blocks) > 3 else ""
    return f"{len(blocks)} unreadable source block(s) written as nodata (--skip-bad-blocks): {shown}{more}"
