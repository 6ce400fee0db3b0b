"""The dot fence: a stop returns only once no dot allowed before it can still be written.

The final-dot gate answers from a store read that started after the worker
arrived, but between that read and the dot's write() a sender can be descheduled
by the OS. Under heavy CPU starvation that pause outlasted a whole `mailconsole
stop` (commit, print, exit), and a dot allowed just before the stop reached the
server after the command had returned.

The fence closes that window across processes with one advisory file lock next
to the store: every engine holds it shared from the moment a worker arrives at
the gate until its dot is written (or refused), and a stop, after its commit,
takes it exclusively once. Any dot written after that moment belongs to a gate
visit that began after the commit, whose read therefore saw the stop.

flock(2) rather than a database lock: the engines must not take SQLite's write
lock per message, and flock is released by the kernel when a process dies, so
a killed engine never blocks a stop. Stores that are not local SQLite files
have no fence (the gate alone applies); a PostgreSQL store would use an
advisory lock here.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from sqlalchemy.engine import make_url

from .connection import Store

# How long a stop waits for dots already allowed. They normally take
# microseconds; only a sender stuck writing into a full socket buffer, or
# stopped by a signal, holds the fence this long, and the stop itself has
# already committed.
DEFAULT_WAIT = 2.0


def fence_path(store: Store) -> str | None:
    if not store.is_sqlite:
        return None
    db = make_url(store.url).database
    if not db or db == ":memory:":
        return None
    return db + "-dots.lock"


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


class DotFence:
    """An engine's shared hold on the fence, counted across its workers.

    The first worker to arrive at the gate takes the shared lock, the last one
    to leave releases it; in between, holding costs nothing.
    """

    def __init__(self, store: Store) -> None:
        path = fence_path(store)
        self._fd = _open(path) if path else None
        self._holders = 0
        self._lock = threading.Lock()

    def hold(self) -> None:
        if self._fd is None:
            return
        with self._lock:
            if self._holders == 0:
                # Blocks only while a stop holds the lock exclusively: microseconds.
                fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._holders += 1

    def release(self) -> None:
        if self._fd is None:
            return
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_for_allowed_dots(store: Store, timeout: float = DEFAULT_WAIT) -> bool:
    """After a stop's commit: wait until no engine is between a gate read and its dot.

    Polls for the exclusive lock rather than blocking on it, so that it never
    queues ahead of engines and gives up after `timeout`. True once the fence
    was passed, False on timeout (an engine stuck mid-dot; it was allowed
    before the stop).
    """
    path = fence_path(store)
    if path is None:
        return True
    fd = _open(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.0002)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)
