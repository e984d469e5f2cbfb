"""Pin weights to the exact bytes the client resolved, and check them wherever they are loaded.

The client computes the SHA-256 of the weight file when it resolves a spec
(:func:`file_sha256`, cached per file version) and records it in the spec's
:class:`~geosal.models.weights_source.WeightsSource`. A worker that does not
share the client's file system receives the bytes (:func:`read_pinned_bytes`
on the client) and :func:`check_pin` refuses any others.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from geosal.models.errors import ModelLoadError
from geosal.models.weights_source import WeightsSource

_CHUNK = 1 << 20


def bytes_sha256(content: bytes) -> str:
    """Lowercase hex SHA-256 of ``content``."""
    return hashlib.sha256(content).hexdigest()


def file_sha256(path: str | Path) -> str:
    """Lowercase hex SHA-256 of a file's bytes (cached per path, size and modification time).

    Raises:
        ModelLoadError: the file cannot be read.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise ModelLoadError(f"cannot read weights file {path}: {error.strerror or error}") from None
    return _cached_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_pin(source: WeightsSource, sha256: str, where: str) -> None:
    """Refuse weights whose digest differs from the pin (no pin: nothing to check).

    Args:
        source: the spec's weights source.
        sha256: digest of the bytes about to be loaded.
        where: where those bytes came from, for the message.

    Raises:
        ModelLoadError: the digests differ.
    """
    if source.sha256 and sha256 != source.sha256:
        raise ModelLoadError(
            f"weights {source} from {where} are not the ones the client resolved "
            f"(sha256 {sha256[:12]}... instead of {source.sha256[:12]}...): the file changed, or a worker has a different copy"
        )


def read_pinned_bytes(path: str | Path, source: WeightsSource) -> bytes:
    """The bytes of ``path``, checked against ``source``'s pin.

    Raises:
        ModelLoadError: unreadable file or a digest that differs from the pin.
    """
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise ModelLoadError(f"cannot read weights file {path}: {error.strerror or error}") from None
    check_pin(source, bytes_sha256(content), str(path))
    return content
