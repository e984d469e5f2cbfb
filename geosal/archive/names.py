"""Safe, unique output folder names for the scenes of an archive.

A name is built from a file stem or a STAC item id and may only contain
``[A-Za-z0-9._-]``: accents are dropped (``café`` -> ``cafe``), other
characters become ``_``, leading dots, dashes and underscores are removed (no
hidden folders, no ``..``, nothing that reads as an option), trailing dots too,
and the result is at most :data:`MAX_NAME` characters (``scene`` when nothing
is left). When names collide (two ``scene.tif`` in different folders, ids that
differ only in unsafe characters or in case, which matters on case-insensitive
file systems) or would shadow an archive-level file (``catalog.json``...),
every colliding name gets ``-<8 hex digits>`` of a hash of its source key, so
names do not depend on listing order and stay the same from run to run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

MAX_NAME = 80
"""Longest name, in characters, hash suffix included."""

RESERVED = frozenset({"catalog.json", "summary.json", "report.html"})
"""Files ``geosal submit`` writes next to the scene folders (compared case-insensitively)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(label: str, max_length: int = MAX_NAME) -> str:
    """``label`` reduced to a safe single path component (see the module docstring).

    Args:
        label: file stem or STAC item id, any unicode.
        max_length: longest result in characters (> 0).

    Returns:
        A non-empty string of ``[A-Za-z0-9._-]`` that starts with a letter or digit.
    """
    decomposed = unicodedata.normalize("NFKD", label)
    ascii_text = "".join(c if c.isascii() else ("" if unicodedata.combining(c) else "_") for c in decomposed)
    text = _UNSAFE.sub("_", ascii_text).lstrip("._-")
    text = text[:max_length].rstrip(".")
    return text or "scene"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def assign_names(entries: Sequence[tuple[str, str]]) -> list[str]:
    """Unique safe names for ``(label, key)`` pairs, in the same order.

    Args:
        entries: ``label`` is the wanted name (stem or item id); ``key``
            identifies the source (a path relative to the archive, or an item id
            and asset href) and only feeds the disambiguating hash.

    Returns:
        One name per entry; distinct even when compared case-insensitively.
    """
    bases = [safe_name(label) for label, _ in entries]
    counts = Counter(base.lower() for base in bases)
    names: list[str] = []
    seen: set[str] = set()
    for base, (_, key) in zip(bases, entries):
        name = base
        if counts[base.lower()] > 1 or base.lower() in RESERVED:
            name = f"{base[: MAX_NAME - 9].rstrip('.')}-{_digest(key)}"
        candidate, extra = name, 1
        while candidate.lower() in seen:  # the same key twice, or a file already named like a suffixed one
            extra += 1
            candidate = f"{name[: MAX_NAME - 1 - len(str(extra))]}-{extra}"
        seen.add(candidate.lower())
        names.append(candidate)
    return names
