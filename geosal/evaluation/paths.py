"""Where the evaluation's data, results and cache are, and how a path is written into committed files."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The source checkout holding geosal (where ``results/`` and ``runs/`` go), else the working folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def portable(value: str | Path) -> str:
    """A path as it may be written into committed files: relative to the project
    (``results/ucmerced``) or to its parent (``../shared/data/ucmerced``) when it
    lies there; anything else unchanged."""
    text = str(value)
    path = Path(text)
    if not path.is_absolute():
        return text
    root = project_root()
    # as given first, then with links resolved: ../shared may itself be a link to elsewhere
    candidates = ((Path(os.path.normpath(path)), Path(os.path.normpath(root))), (path.resolve(), root.resolve()))
    for candidate, project in candidates:
        for base, prefix in ((project, ""), (project.parent, "../")):
            try:
                relative = candidate.relative_to(base)
            except ValueError:
                continue
            return prefix + (str(relative) if str(relative) != "." else ".")
    return text


def default_paths(project: Path) -> dict[str, Path]:
    """Default ``data`` / ``results`` / ``cache`` paths of the project folder ``project``."""
    return {
        "data": project.parent / "shared" / "data" / "ucmerced",
        "results": project / "results" / "ucmerced",
        "cache": project / "runs" / "evaluate-cache",
    }
