"""What happened to each scene of an archive, and to the archive as a whole."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from geosal.archive.sources import ArchiveScene
from geosal.errors import GeosalError
from geosal.pipeline.scene import SceneResult
from geosal.raster.objects import join, list_files
from geosal.raster.store import read_attrs

Status = Literal["ok", "failed", "skipped"]

_EXPECTED = (GeosalError, FileNotFoundError)


def describe_error(error: BaseException) -> str:
    """One line for the summary: the message of an expected (user-caused) error,
    ``"<Type>: <first line>"`` for anything else."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(error, _EXPECTED) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def folder_bytes(folder: str | os.PathLike[str]) -> int:
    """Total size in bytes of the files under ``folder`` (objects under an ``s3://`` prefix; 0 when it does not exist)."""
    return sum(list_files(folder).values())


@dataclass
class SceneOutcome:
    """One scene's record in ``summary.json`` and ``report.html``.

    Attributes:
        name: output folder name under ``OUT/``.
        source: the raster path or URL.
        status: ``ok`` (computed now), ``skipped`` (complete from an earlier
            run, with ``--resume``) or ``failed``.
        error: one-line reason when failed.
        stage: where it failed: ``plan`` (input, model or output checks) or
            ``run`` (on the cluster or during export).
        tiles, tiles_computed: tiles in the scene, and computed in this run.
        blocks, blocks_skipped: blocks (tasks) in the scene, and blocks already
            done by an earlier, interrupted run.
        seconds: wall seconds per stage: ``plan``, ``pass1``, ``pass2``,
            ``export`` and ``total`` (plan + execution, waiting excluded).
        output_bytes: size of the scene's output folder in bytes.
        notes: decisions worth telling the user (resampling, bands, unreadable source blocks...).
        bad_blocks: the unreadable source blocks written as nodata (``--skip-bad-blocks``): ``row``, ``col``
            (the source's internal block) and ``x``, ``y``, ``width``, ``height`` (its source pixels).
    """

    name: str
    source: str
    status: Status
    error: str | None = None
    stage: str | None = None
    tiles: int = 0
    tiles_computed: int = 0
    blocks: int = 0
    blocks_skipped: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    output_bytes: int = 0
    notes: tuple[str, ...] = ()
    bad_blocks: tuple[dict[str, int], ...] = ()

    @property
    def tiles_per_second(self) -> float:
        """Tiles computed per second of pass 1 (0 when nothing was computed)."""
        pass1 = self.seconds.get("pass1", 0.0)
        return self.tiles_computed / pass1 if pass1 > 0 else 0.0

    @classmethod
    def failed(cls, scene: ArchiveScene, error: BaseException | str, stage: str, seconds: dict[str, float] | None = None) -> SceneOutcome:
        """A failure at ``stage`` with ``error`` (an exception or a message)."""
        message = error if isinstance(error, str) else describe_error(error)
        return cls(scene.name, scene.source, "failed", error=message, stage=stage, seconds=dict(seconds or {}))

    @classmethod
    def completed(cls, scene: ArchiveScene, result: SceneResult, plan_seconds: float, run_seconds: float) -> SceneOutcome:
        """A scene computed in this run (``result`` from :func:`~geosal.pipeline.execute_scene`)."""
        seconds = {"plan": plan_seconds, **{k: v for k, v in result.seconds.items() if k != "total"}}
        seconds["total"] = plan_seconds + run_seconds
        return cls(scene.name, scene.source, "ok", tiles=result.tiles, tiles_computed=result.tiles_computed,
                   blocks=result.blocks, blocks_skipped=result.blocks_skipped, seconds=seconds,
                   output_bytes=folder_bytes(result.output), notes=tuple(result.notes), bad_blocks=tuple(result.bad_blocks))

    @classmethod
    def already_complete(cls, scene: ArchiveScene, folder: str | Path) -> SceneOutcome:
        """A scene whose output folder exists from an earlier run (tile and block
        counts are read from its Zarr attributes when possible)."""
        tiles, blocks = completed_counts(folder)
        return cls(scene.name, scene.source, "skipped", tiles=tiles, blocks=blocks, blocks_skipped=blocks,
                   seconds={"total": 0.0}, output_bytes=folder_bytes(folder))

    def line(self) -> str:
        """One human-readable line: status, name, and tiles and time or the error."""
        if self.status == "failed":
            return f"FAILED   {self.name}: {self.error}"
        if self.status == "skipped":
            return f"skipped  {self.name}: complete from an earlier run"
        resumed = f", {self.blocks_skipped} of {self.blocks} blocks done before" if self.blocks_skipped else ""
        bad = f"; {len(self.bad_blocks)} unreadable source block(s) written as nodata" if self.bad_blocks else ""
        return (f"ok       {self.name}: {self.tiles_computed} tiles in {self.seconds.get('total', 0.0):.1f} s "
                f"({self.tiles_per_second:.2f} tiles/s in pass 1{resumed}){bad}")

    def to_dict(self) -> dict:
        """Plain JSON-serialisable record, ``tiles_per_second`` included."""
        return asdict(self) | {"notes": list(self.notes), "bad_blocks": list(self.bad_blocks),
                               "tiles_per_second": self.tiles_per_second}


def completed_counts(folder: str | Path) -> tuple[int, int]:
    """``(tiles, blocks)`` of a finished scene folder from ``saliency.zarr``'s run metadata ((0, 0) if unreadable)."""
    try:
        attrs = read_attrs(join(folder, "saliency.zarr"))
        height, width = attrs["working_grid"]["height"], attrs["working_grid"]["width"]
        tile, block = int(attrs["tile"]), int(attrs["block"])
    except Exception:  # noqa: BLE001 - counts are informative only
        return 0, 0
    return math.ceil(height / tile) * math.ceil(width / tile), math.ceil(height / block) * math.ceil(width / block)


@dataclass
class ArchiveResult:
    """A whole ``submit``: one outcome per scene, in archive order.

    Attributes:
        out: the output folder (a ``Path``, or an ``s3://`` URL).
        outcomes: one :class:`SceneOutcome` per scene.
        seconds: wall seconds: ``plan`` (all scenes), ``run`` (execution) and ``total``.
    """

    out: str | Path
    outcomes: list[SceneOutcome]
    seconds: dict[str, float] = field(default_factory=dict)

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when no scene failed."""
        return self.count("failed") == 0

    @property
    def exit_code(self) -> int:
        """0 when every scene succeeded or was complete already, 1 when some failed."""
        return 0 if self.ok else 1

    def totals(self) -> dict:
        """Archive totals: scene counts by status, tiles, blocks, bytes, seconds, and
        ``tiles_per_second``: tiles computed per wall second of execution (all stages)."""
        computed = sum(o.tiles_computed for o in self.outcomes)
        run = self.seconds.get("run", 0.0)
        return {
            "scenes": len(self.outcomes),
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "tiles": sum(o.tiles for o in self.outcomes),
            "tiles_computed": computed,
            "blocks": sum(o.blocks for o in self.outcomes),
            "output_bytes": sum(o.output_bytes for o in self.outcomes),
            "seconds": dict(self.seconds),
            "tiles_per_second": computed / run if run > 0 else 0.0,
        }
