"""Bulk transactions sized by time: they shrink at once when slow and grow only gradually."""

from __future__ import annotations

from mailconsole.store.batching import TimedBatches


def test_a_slow_batch_shrinks_the_next_to_what_fits():
    b = TimedBatches(1000, target=0.010)
    b.observe(1000, 0.080)  # 80 ms for 1000 rows: 125 fit in 10 ms
    assert b.size == 125


def test_a_fast_batch_grows_the_next_by_half_at_most():
    b = TimedBatches(100, target=0.010)
    b.observe(100, 0.001)  # 1000 would fit
    assert b.size == 150


def test_sizes_stay_within_their_bounds():
    b = TimedBatches(100, target=0.010, low=20, high=200)
    b.observe(100, 10.0)
    assert b.size == 20
    for _ in range(10):
        b.observe(b.size, 0.0001)
    assert b.size == 200
    assert b.longest == 10.0


def test_each_step_leaves_the_lock_free_for_the_gap(store):
    import time

    b = TimedBatches(10, gap=0.05)
    t0 = time.perf_counter()
    assert b.step(store, lambda conn, size: size) == 10
    assert time.perf_counter() - t0 >= 0.05


def test_the_target_is_the_store_s_own(store):
    """SQLite holds its one write lock through a bulk transaction (a stop waits behind it):
    10 ms. PostgreSQL takes row locks only, which no stop waits for, and a batch's cost
    there is its round trips: at 10 ms its imports shrank to 10-row batches."""
    b = TimedBatches(100)
    b.step(store, lambda conn, size: 0)
    assert b.target == store.backend.bulk_seconds
    assert b.target == (0.100 if store.backend.name == "postgresql" else 0.010)
