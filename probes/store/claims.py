"""Claims: one lock file per shard, so processes that fill one store split the work.

Before a process computes a shard it creates ``.<shard>.lock`` beside it with ``O_EXCL`` (one
creator wins, also on network file systems that honour it) holding its host, pid and the
pid's start time. Another process that finds the lock leaves the shard to its owner. A lock
whose owner is dead is stale: on the owner's host, a dead pid (or a pid reused by a newer
process) is recognised and the lock recovered; a lock of another host is only recovered by
deleting it (the waiting process says which file). Temporary files of writers follow the
same rule (:func:`dead_writer`).

The API is :func:`claim`, a context manager: ``with claim(shard) as mine: if mine: ...``.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: This machine's name, as locks and temporary files record it.
HOST = socket.gethostname()
#: Seconds after which a lock that never got its owner written is taken as stale.
UNREADABLE_GRACE_S = 60.0


@dataclass(frozen=True)
class Owner:
    """The process that holds a claim (or wrote a temporary file)."""

    host: str
    pid: int
    started: str | None = None

    @classmethod
    def me(cls) -> Owner:
        """This process."""
        return cls(HOST, os.getpid(), _start_time(os.getpid()))

    def alive(self) -> bool | None:
        """Whether the owner still runs: None when it ran on another host (cannot be told)."""
        if self.host != HOST:
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
        started = _start_time(self.pid)
        return self.started is None or started is None or started == self.started

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def lock_path(shard: Path) -> Path:
    """The lock file of a shard."""
    return shard.with_name(f".{shard.name}.lock")


def is_our_lock(path: Path) -> bool:
    """Whether ``path`` is a claim this toolkit made: named ``.<shard>.parquet.lock`` and holding a
    lock record (host, pid, claimed), or empty (its writer was killed between creating and
    filling it). A file of another program that merely ends in ``.lock`` is not ours."""
    # the record's keys: host and pid, with the pid's start time and the claim's time
    name = path.name
    if not (name.startswith(".") and name.endswith(".parquet.lock") and len(name) > len("..parquet.lock")):
        return False
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    if not text:
        return True
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and {"host", "pid"} <= set(data) <= {"host", "pid", "started", "claimed"}
        and isinstance(data["pid"], int)
    )


def owner_of(lock: Path) -> Owner | None:
    """Who holds a lock (None when the file is gone or unreadable: a writer in mid-creation)."""
    try:
        data = json.loads(lock.read_text())
        return Owner(str(data["host"]), int(data["pid"]), data.get("started"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def claim(shard: Path) -> Iterator[bool]:
    """Claim a shard for the block's duration; yields False when another live process holds it.

    A stale lock (its owner dead on this host) is recovered. The lock is removed on leaving the
    block, also when the block raises; a killed process leaves it, and the next claimant
    recovers it.
    """
    lock = lock_path(shard)
    mine = acquire(lock)
    try:
        yield mine
    finally:
        if mine:
            release(lock)


def acquire(lock: Path) -> bool:
    """Create the lock for this process; False when a live (or unknown) owner holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = Owner.me()
    body = json.dumps(
        {
            "host": me.host,
            "pid": me.pid,
            "started": me.started,
            "claimed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    for _ in range(3):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _recover_stale(lock):
                return False
            continue
        with os.fdopen(descriptor, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    return False


def release(lock: Path) -> None:
    """Remove a lock this process holds (a lock another process took over is left alone)."""
    if owner_of(lock) == Owner.me():
        lock.unlink(missing_ok=True)


def holds(lock: Path) -> bool:
    """Whether this process holds the lock."""
    return owner_of(lock) == Owner.me()


def stale(lock: Path) -> bool:
    """Whether a lock's owner is dead on this host, or the lock stayed unreadable (its writer was
    killed between creating and filling it) for longer than :data:`UNREADABLE_GRACE_S`."""
    owner = owner_of(lock)
    if owner is not None:
        return dead_writer(owner)
    try:
        return time.time() - lock.stat().st_mtime > UNREADABLE_GRACE_S
    except OSError:
        return False


def dead_writer(owner: Owner | None) -> bool:
    """Whether a lock's or temporary file's owner is known to be dead (on this host)."""
    return owner is not None and owner.alive() is False


def _recover_stale(lock: Path) -> bool:
    """Remove the lock if its owner is dead on this host; whether it was removed.

    Recoveries on one host are serialised by a ``flock`` on the folder's ``.claims`` file, so two
    recoverers never remove a fresh lock that a third process created after the stale one went.
    """
    guard = lock.parent / ".claims"
    with open(guard, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not lock.exists():
                return True  # gone meanwhile: try again
            if not stale(lock):
                return False
            lock.unlink(missing_ok=True)
            return True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """The pid's start time in clock ticks since boot (Linux), to tell a reused pid; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ESRCH, errno.EACCES):
            raise
        return None
    return stat.rsplit(")", 1)[1].split()[19]
