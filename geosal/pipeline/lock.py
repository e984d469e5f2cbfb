"""Output locks: one run at a time writes a scene's output (or an archive's output folder).

A lock is a file beside the output (``OUT/.<name>.lock`` for a scene,
``OUT/.lock`` for ``geosal submit``), created atomically (hard link of a
complete draft: it exists whole or not at all, on NFS too; in an object store,
``s3://``, a conditional PUT that creates the object only if it is absent,
``If-None-Match: *``) and holding the
owner as JSON: host name, boot id, pid and the process's start time, when
the run started, and a random token. While the run lasts, one thread per
process touches every lock it holds every :data:`HEARTBEAT_S` seconds.

**The staleness rule.** A lock is stale, and a new run takes it over (and says
so), when

- it was made on this machine (same host name and boot id) and its process is
  gone (no such pid, or the pid now belongs to a process started at another
  time): a crashed or killed run, detected at once; or
- its heartbeat (the file's modification time; an object's ``LastModified``, rewritten by each
  heartbeat) is older than :data:`STALE_S` seconds: a run on another machine that died, or a machine rebooted since.

A lock that is not stale refuses the new run in one line naming its owner;
nothing of the running output is touched. Locks keep other processes out: a
lock of this very process (a run prepared earlier and left unfinished, as
tests do to stand for an interrupted run) is simply replaced. Two runs taking over the same stale
lock are serialised by a second file, ``<lock>.takeover`` (exclusive creation;
itself stale after :data:`STALE_S` seconds). A run that finds its own lock
taken over (it was suspended for longer than :data:`STALE_S`, on another
machine's clock) stops before it publishes anything.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil

from geosal.pipeline.errors import OutputError
from geosal.raster.errors import StorageError
from geosal.raster.objects import delete, exists, is_url, modified, read_bytes, write_bytes

HEARTBEAT_S = 10.0
"""Seconds between two touches of a held lock."""
STALE_S = 120.0
"""Age in seconds of a lock's last heartbeat after which any run may take it over."""
ATTEMPTS = 50
"""Attempts at creating or taking over a lock while other runs race for it."""


class LockHeldError(OutputError):
    """Another live run holds the lock (one line naming it)."""


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: ``host`` and ``boot`` (the kernel's boot id) identify the machine, ``pid`` and
    ``process_started`` (seconds since the epoch) the process, ``started`` (UTC, ISO) the run, ``token`` the lock."""

    host: str
    boot: str
    pid: int
    process_started: float
    started: str
    token: str

    @classmethod
    def here(cls) -> LockOwner:
        """The owner for this process, now."""
        return cls(socket.gethostname(), _boot_id(), os.getpid(), psutil.Process().create_time(),
                   datetime.now(timezone.utc).isoformat(timespec="seconds"), secrets.token_hex(8))

    def describe(self) -> str:
        """``pid 1234 on host-a since 2026-01-01T12:00:00+00:00``."""
        return f"pid {self.pid} on {self.host} since {self.started}"

    def same_machine(self) -> bool:
        """Whether the lock was made on this machine (same host name and boot id)."""
        return self.host == socket.gethostname() and self.boot == _boot_id()

    def same_process(self, other: LockOwner) -> bool:
        """Whether ``other`` is the same process on the same machine."""
        same = (self.host, self.boot, self.pid) == (other.host, other.boot, other.pid)
        return same and abs(self.process_started - other.process_started) < 1.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_alive(pid: int, started: float) -> bool:
    """Whether process ``pid`` exists and is the one started at ``started`` (not a later process reusing the pid)."""
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


LockPath = Path | str
"""A lock file: a local path, or an ``s3://`` URL."""


def read_owner(path: LockPath) -> LockOwner | None:
    """The owner written in lock ``path``, or None when it is gone or unreadable."""
    try:
        return LockOwner(**json.loads(path.read_text() if isinstance(path, Path) else read_bytes(path)))
    except (OSError, ValueError, TypeError):
        return None


def stale_reason(path: LockPath, owner: LockOwner) -> str | None:
    """Why lock ``path`` (held by ``owner``) is stale, or None when its run may still be alive (see the module docstring)."""
    if owner.same_machine():
        return None if process_alive(owner.pid, owner.process_started) else f"process {owner.pid} is gone"
    try:
        age = time.time() - (path.stat().st_mtime if isinstance(path, Path) else modified(path))
    except FileNotFoundError:
        return "it was removed"
    return f"no heartbeat for {age:.0f} s" if age > STALE_S else None


def _write(path: LockPath, owner: LockOwner) -> None:
    """Replace ``path`` with ``owner``'s lock, atomically."""
    if not isinstance(path, Path):
        write_bytes(path, json.dumps(asdict(owner)).encode())
        return
    draft = path.with_name(f"{path.name}.{owner.token}")
    draft.write_text(json.dumps(asdict(owner)))
    os.replace(draft, path)


def _create(path: LockPath, owner: LockOwner) -> bool:
    """Create ``path`` holding ``owner``, atomically; False when it exists."""
    if not isinstance(path, Path):
        return write_bytes(path, json.dumps(asdict(owner)).encode(), exclusive=True)
    draft = path.with_name(f"{path.name}.{owner.token}")
    draft.write_text(json.dumps(asdict(owner)))
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        return False
    finally:
        draft.unlink()


def _exists(path: LockPath) -> bool:
    return path.exists() if isinstance(path, Path) else exists(path)


def _unlink(path: LockPath) -> None:
    if isinstance(path, Path):
        path.unlink(missing_ok=True)
    else:
        delete(path)


def _touch(path: LockPath, owner: LockOwner) -> None:
    """Renew the heartbeat of ``owner``'s lock ``path`` (an object is written again: its ``LastModified`` is the heartbeat)."""
    if isinstance(path, Path):
        os.utime(path)
    else:
        _write(path, owner)


def _with_suffix(path: LockPath, suffix: str) -> LockPath:
    return path.with_name(path.name + suffix) if isinstance(path, Path) else path + suffix


class OutputLock:
    """A held lock (see the module docstring); :meth:`acquire` makes one, :meth:`release` gives it back.

    Attributes:
        path: the lock file.
        owner: this run.
        taken_over: what was said about the stale lock this run took over, or None.
    """

    def __init__(self, path: LockPath, owner: LockOwner, taken_over: str | None = None):
        self.path, self.owner, self.taken_over = path, owner, taken_over
        self.lost = False

    @classmethod
    def acquire(cls, path: str | os.PathLike[str], what: str) -> OutputLock:
        """Take the lock at ``path`` (a local path or an ``s3://`` URL) for ``what`` (named in the messages), taking
        over a stale one.

        Raises:
            LockHeldError: a live run holds it.
            OutputError: the lock cannot be written (read-only or full file system, permissions).
            StorageError: the object store refuses (no such bucket, credentials refused), one line.
        """
        path = os.fspath(path) if is_url(path) else Path(path)
        owner = LockOwner.here()
        try:
            if isinstance(path, Path):
                path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(ATTEMPTS):
                if _create(path, owner):
                    return _KEEPER.hold(cls(path, owner))
                current = read_owner(path)
                if current is None and _exists(path):
                    raise LockHeldError(f"{what}: the lock {path} is unreadable; remove it if no geosal run uses the output")
                if current is None:  # released meanwhile: try again
                    continue
                if current.same_process(owner):  # an earlier run of this process that was left unfinished
                    _write(path, owner)
                    return _KEEPER.hold(cls(path, owner))
                reason = stale_reason(path, current)
                if reason is None:
                    raise LockHeldError(f"{what} is in use by another geosal run ({current.describe()}; lock {path}): "
                                        "wait for it to finish, or remove the lock if that run is gone")
                if _take_over(path, current, owner):
                    note = f"took over the stale lock of {what} ({current.describe()}: {reason})"
                    return _KEEPER.hold(cls(path, owner, note))
                time.sleep(0.05)
        except StorageError:
            raise
        except OSError as error:
            raise OutputError(f"cannot write to {path.parent}: {error.strerror or error}") from None
        raise LockHeldError(f"{what}: could not take the lock {path} (other runs keep racing for it)")

    def check(self) -> None:
        """Raise when another run took this lock over (before publishing anything).

        Raises:
            LockHeldError: the lock is no longer this run's.
        """
        current = read_owner(self.path)
        if self.lost or current is None or current.token != self.owner.token:
            holder = f" by {current.describe()}" if current is not None else ""
            raise LockHeldError(f"the lock {self.path} was taken over{holder} while this run was suspended; this run "
                                "stops without publishing")

    def release(self) -> None:
        """Give the lock back (remove it if it is still this run's); safe to call twice."""
        _KEEPER.drop(self)
        current = read_owner(self.path)
        if current is not None and current.token == self.owner.token:
            _unlink(self.path)

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _take_over(path: LockPath, stale: LockOwner, owner: LockOwner) -> bool:
    """Replace the stale lock ``path`` (held by ``stale``) with ``owner``'s, one taker at a time."""
    guard = _with_suffix(path, ".takeover")
    if not _create(guard, owner):
        try:
            if time.time() - (guard.stat().st_mtime if isinstance(guard, Path) else modified(guard)) > STALE_S:
                _unlink(guard)  # a taker that died in these few lines
        except FileNotFoundError:
            pass
        return False
    try:
        current = read_owner(path)
        if current is not None and current.token != stale.token:
            return False  # another run took it meanwhile
        _unlink(path)
        return _create(path, owner)
    finally:
        _unlink(guard)


class _Keeper:
    """The process's heartbeat thread: touches every held lock every :data:`HEARTBEAT_S` seconds and notices a
    lock taken over by another run."""

    def __init__(self) -> None:
        self.locks: set[OutputLock] = set()
        self.guard = threading.Lock()
        self.thread: threading.Thread | None = None

    def hold(self, lock: OutputLock) -> OutputLock:
        with self.guard:
            self.locks.add(lock)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="geosal-lock-heartbeat", daemon=True)
                self.thread.start()
        return lock

    def drop(self, lock: OutputLock) -> None:
        with self.guard:
            self.locks.discard(lock)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_S)
            with self.guard:
                held = list(self.locks)
            for lock in held:
                current = read_owner(lock.path)
                if current is None or current.token != lock.owner.token:
                    lock.lost = True
                    continue
                try:
                    _touch(lock.path, lock.owner)
                except OSError:
                    pass  # a transient storage error: the next beat tries again


_KEEPER = _Keeper()
