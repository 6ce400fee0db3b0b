"""Bulk work in write transactions bounded by time, not by row count.

A stop waits for whatever transaction holds the write lock. Rows cost very
different amounts (an import row with its unique index, a purged row, a
suspended one; a loaded machine makes each slower), so a fixed batch of 5000
rows held the lock 20 to 100 ms and more. Here each transaction's size follows
the time the previous ones took, aiming at TARGET; and between transactions the
lock is left free for GAP, long enough for a writer polling every LOCK_POLL
(the stop, store/connection.py) to take it: back to back, the next BEGIN of a
bulk job comes within microseconds of its COMMIT and would win every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from .connection import Store

GAP = 0.002  # seconds the lock is left free after each
START, LOW, HIGH = 500, 10, 20_000


class TimedBatches:
    """Sizes for one bulk job's transactions; `size` adapts to the time each one takes."""

    def __init__(self, start: int = START, *, target: float | None = None, gap: float = GAP,
                 low: int = LOW, high: int = HIGH) -> None:
        """target: seconds one transaction should last; None: the store's own, taken at the
        first step (`Backend.bulk_seconds`: SQLite 10 ms, its one write lock; PostgreSQL
        100 ms, where no stop waits behind a bulk job's row locks)."""
        self.size = max(low, min(high, start))
        self.target, self.gap, self.low, self.high = target, gap, low, high
        self.longest = 0.0  # the longest transaction so far, seconds (for tests and benches)

    def observe(self, rows: int, seconds: float) -> None:
        """A transaction of `rows` rows held the lock `seconds`: size the next one.

        Shrinks at once to what would have fitted; grows at most by half, so a
        single fast batch (cache warm, machine idle) does not overshoot.
        """
        self.longest = max(self.longest, seconds)
        if rows <= 0 or seconds <= 0 or self.target is None:
            return
        fits = rows * self.target / seconds
        size = fits if fits < self.size else min(fits, self.size * 1.5)
        self.size = int(max(self.low, min(self.high, size)))

    def step(self, store: "Store", work: Callable[[Connection, int], int], *, durable: bool = True) -> int:
        """One write transaction of work(conn, size) -> rows done; then the lock is left free for `gap`.

        Durable by default, for the stop's sake: the stop's commit syncs the WAL to
        disk, and with it every frame appended before it. A bulk job committing
        without syncing leaves megabytes of frames for that sync to write (seen: a
        stop taking 270 ms during a million-row import, none of it waiting for the
        lock); syncing each of its own small steps keeps what the stop must flush small.
        """
        if self.target is None:
            self.target = store.backend.bulk_seconds
        with store.write(durable=durable) as conn:
            t0 = time.perf_counter()
            rows = work(conn, self.size)
        self.observe(rows, time.perf_counter() - t0)
        time.sleep(self.gap)
        return rows
