"""The source blocks a run could not read and wrote as nodata (``--skip-bad-blocks``).

A pass-1 task that read around unreadable source blocks records them in
``.bad_blocks/<block>.json`` of the scene's partial output folder (one file per
pass-1 block, rewritten identically by a retried task, kept by ``--resume``);
the client collects them when the scene is exported: they go into the run
metadata, the STAC Item, the scene result and the archive summary.
"""

from __future__ import annotations

import json

from geosal.pipeline.job import SceneJob
from geosal.raster.damaged import SourceBlock
from geosal.raster.objects import join, list_files, parent, read_many, remove_tree, write_atomic

FOLDER = ".bad_blocks"
"""Folder of the records in the scene's partial output folder."""


def _folder(job: SceneJob) -> str:
    return join(parent(job.store), FOLDER)


def record_bad_blocks(job: SceneJob, index: int, blocks: tuple[SourceBlock, ...]) -> None:
    """Record that pass-1 block ``index`` read around ``blocks`` (written atomically; nothing when empty)."""
    if not blocks:
        return
    write_atomic(join(_folder(job), f"{index}.json"), json.dumps([b.as_dict() for b in blocks]).encode())


def collect_bad_blocks(job: SceneJob) -> list[dict[str, int]]:
    """Every unreadable source block recorded for the scene, once each (blocks meet several pass-1 blocks'
    reads through their halos), in row-major order: ``{"row", "col", "x", "y", "width", "height"}``."""
    folder = _folder(job)
    records = [join(folder, name) for name in list_files(folder) if name.endswith(".json") and "/" not in name]
    found = {}
    for content in read_many(records):
        for block in json.loads(content):
            found[(block["row"], block["col"])] = block
    return [found[key] for key in sorted(found)]


def remove_records(job: SceneJob) -> None:
    """Remove the records from the partial output folder (after they went into the outputs)."""
    remove_tree(_folder(job))


def describe_bad_blocks(blocks: list[dict[str, int]]) -> str:
    """The note for the user: how many source blocks were unreadable and written as nodata, and the first ones."""
    shown = "; ".join(SourceBlock(**b).describe() for b in blocks[:3])
    more = f"; and {len(blocks) - 3} more" if len(blocks) > 3 else ""
    return f"{len(blocks)} unreadable source block(s) written as nodata (--skip-bad-blocks): {shown}{more}"
