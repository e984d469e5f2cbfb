"""Resumable results: one small JSON file per finished cell.

A cell is one unit of work of a protocol, e.g. ``(method, mode, percent)`` of
the retraining protocol. It is written the moment it finishes (to a temporary
name, then renamed, so a crash never leaves half a file), and a rerun skips
every cell whose file exists.

Each protocol folder also holds ``settings.json``: the settings that change
the numbers (image size, epochs, seeds, method options...). A rerun with
different settings in the same folder is refused instead of mixing cells of
two experiments.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from geosal.errors import GeosalError


class SettingsMismatch(GeosalError, ValueError):
    """The results folder holds cells computed with other settings."""


def _slug(value: object) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(temporary, path)


class CellStore:
    """The finished cells of one protocol, in ``folder/cells/``.

    Args:
        folder: the protocol's results folder (created).
        settings: JSON-serialisable settings the cells depend on.

    Raises:
        SettingsMismatch: ``folder`` holds cells made with different settings.
    """

    def __init__(self, folder: str | Path, settings: dict):
        self.folder = Path(folder)
        self.cells = self.folder / "cells"
        self.cells.mkdir(parents=True, exist_ok=True)
        settings_file = self.folder / "settings.json"
        settings = json.loads(json.dumps(settings))  # normalise tuples, keys
        if settings_file.exists():
            existing = json.loads(settings_file.read_text())
            if existing != settings and any(self.cells.glob("*.json")):
                changed = sorted(k for k in set(existing) | set(settings) if existing.get(k) != settings.get(k))
                raise SettingsMismatch(
                    f"{self.folder} holds results made with other settings ({', '.join(changed)}); "
                    f"use another --results folder or delete {self.cells}"
                )
        write_json_atomic(settings_file, settings)
        self.settings = settings

    def path(self, *key: object) -> Path:
        return self.cells / ("__".join(_slug(k) for k in key) + ".json")

    def has(self, *key: object) -> bool:
        return self.path(*key).exists()

    def get(self, *key: object) -> dict | None:
        path = self.path(*key)
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, row: dict, *key: object) -> None:
        write_json_atomic(self.path(*key), row)

    def rows(self) -> Iterator[dict]:
        """Every finished cell, in file-name order."""
        for path in sorted(self.cells.glob("*.json")):
            yield json.loads(path.read_text())
