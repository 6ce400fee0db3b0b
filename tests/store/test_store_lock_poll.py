"""Durable writes (stop, pause, delete) take the write lock by polling, not through SQLite's backoff."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time

import pytest
from storehelp import ALICE

from mailconsole.store import Store, StoreError, accounts


def _hold_lock(db_path, seconds: float, released: list[float], ready: threading.Event) -> None:
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        holder.execute("ROLLBACK")
        released.append(time.perf_counter())
    finally:
        holder.close()


def test_the_stop_gets_the_lock_within_a_millisecond_of_its_release(store, db_path):
    """SQLite's busy handler would sleep 1, 2, 5, 10, 15… ms: after 20 ms held, it wakes ~13 ms late."""
    late: list[float] = []
    for _ in range(5):
        released: list[float] = []
        ready = threading.Event()
        holder = threading.Thread(target=_hold_lock, args=(db_path, 0.02, released, ready))
        holder.start()
        ready.wait(5)
        accounts.commit_stop(store, ALICE)
        done = time.perf_counter()
        holder.join()
        late.append(done - released[0])
        accounts.resume(store, ALICE)
    assert statistics.median(late) < 0.004, [f"{x * 1000:.1f} ms" for x in late]


def test_a_store_locked_past_the_busy_timeout_fails_in_one_line(db_path):
    Store(str(db_path)).close()
    store = Store(str(db_path), busy_timeout_ms=200)
    released: list[float] = []
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db_path, 0.6, released, ready))
    holder.start()
    ready.wait(5)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError) as failed:
            accounts.commit_stop(store, ALICE)  # one try; `stop` retries until applied
        waited = time.monotonic() - t0
    finally:
        holder.join()
    assert 0.15 < waited < 0.5  # the normal busy timeout, not more
    message = str(failed.value)
    assert "locked by another writer" in message and "\n" not in message
    # The pooled connection is back on the normal busy timeout for every other write.
    with store.engine.connect() as conn:
        assert conn.connection.driver_connection.execute("PRAGMA busy_timeout").fetchone()[0] == 200
    assert accounts.stop(store, ALICE).stopped  # and the store works once the lock is free
    store.close()
