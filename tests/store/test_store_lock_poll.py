"""Durable writes (stop, pause, delete) take the write lock by polling, not through SQLite's backoff."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import event
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


def test_the_stop_polls_for_the_lock_instead_of_sqlites_busy_handler(store, db_path):
    """SQLite's busy handler sleeps 1, 2, 5, 10, 15… ms between tries inside one BEGIN: after 20 ms
    held it wakes ~13 ms late. The stop tries BEGIN IMMEDIATE itself every 0.5 ms instead.

    Counted, not timed (a loaded machine stretches any sleep): while a holder keeps
    the lock for 100 ms, the stop's connection issues BEGIN IMMEDIATE again and again;
    the busy handler would show one statement. The late-by figures are in bench/stop_latency.py.
    """
    attempts: list[str] = []

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.set_trace_callback(lambda sql: attempts.append(sql) if "BEGIN IMMEDIATE" in sql.upper() else None)

    store.engine.dispose()  # connections from now on are traced
    released: list[float] = []
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db_path, 0.1, released, ready))
    holder.start()
    ready.wait(5)
    assert accounts.commit_stop(store, ALICE).stopped
    holder.join()
    assert len(attempts) >= 5, attempts


def test_a_store_locked_past_the_busy_timeout_fails_in_one_line(db_path):
    Store(str(db_path)).close()
    store = Store(str(db_path), busy_timeout_ms=200)
    released: list[float] = []
    ready = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(db_path, 2.0, released, ready))
    holder.start()
    ready.wait(5)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError) as failed:
            accounts.commit_stop(store, ALICE)  # one try; `stop` retries until applied
        waited = time.monotonic() - t0
    finally:
        holder.join()
    assert 0.15 < waited < 1.5  # the normal busy timeout (0.2 s), not the long retry of `stop`
    message = str(failed.value)
    assert "locked by another writer" in message and "\n" not in message
    # The pooled connection is back on the normal busy timeout for every other write.
    with store.engine.connect() as conn:
        assert conn.connection.driver_connection.execute("PRAGMA busy_timeout").fetchone()[0] == 200
    assert accounts.stop(store, ALICE).stopped  # and the store works once the lock is free
    store.close()
