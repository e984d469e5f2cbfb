"""Errors of the scene pipeline that a user can cause, and what a storage failure becomes."""

from __future__ import annotations

import errno
import os

from geosal.errors import GeosalError

STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
"""``OSError`` numbers that mean the output storage refuses writes (full, over quota, read-only, not permitted)."""


class OutputError(GeosalError, ValueError):
    """The output location cannot be used (exists, not writable, full, in use, or a mismatched partial run)."""


def storage_error(error: OSError, folder: str | os.PathLike[str] | None = None) -> OutputError | None:
    """The one-line :class:`OutputError` for an ``OSError`` whose number is in :data:`STORAGE_ERRNOS` (None otherwise):
    which file (or else which ``folder``) could not be written and why, and that the partial output is kept."""
    if error.errno not in STORAGE_ERRNOS:
        return None
    where = error.filename or folder
    return OutputError(f"cannot write{f' to {where}' if where else ''}: {error.strerror or error}; the partial output is "
                       "kept: free space or fix the permissions, then rerun with --resume")
