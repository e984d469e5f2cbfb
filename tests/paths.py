"""Where the tests find the project and the real data beside it.

The real scenes and UC Merced patches live in ``../shared/data`` (never in the
repository). A test module that needs them imports ``SCENES`` or ``UCMERCED``
from here; when the folder is missing, the module is skipped with the reason
instead of failing on a missing file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"


def _shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} not found: the real data must be beside the project in ../shared", allow_module_level=True)
    return path


def __getattr__(name: str) -> Path:  # imported on use, so only modules that need the data can be skipped
    folders = {"SCENES": ("data", "scenes"), "UCMERCED": ("data", "ucmerced")}
    if name not in folders:
        raise AttributeError(name)
    return _shared(*folders[name])
