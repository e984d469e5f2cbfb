"""Give memory that a finished block freed back to the system.

glibc keeps freed heap memory for reuse, and with several threads allocating
large buffers (source windows, activations, maps) in several arenas, a long run's
resident memory creeps up with the number of blocks it ever held: peak memory
then grows with the scene. :func:`release_freed_memory` (``malloc_trim``) after
each block returns what is free at that moment, a few milliseconds per block. A
lower trim threshold for the whole process (``mallopt``) does the same for every
free and made a run 1.7 times slower (torch frees and reallocates its
activations at every forward). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return the free memory of every malloc arena to the system (glibc), or nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
