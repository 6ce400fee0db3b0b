"""On PostgreSQL, every writer locks a mailing's row before its revision's.

Two engines recording batches whose kinds came in opposite orders (one "sent"
first, the other "failed" first) once locked the revision and the mailing in
opposite orders: the server broke the deadlock after its deadlock_timeout (1 s)
by failing one record, and both engines stood still meanwhile. Checked here by
holding the mailing's row from outside: a record waiting for it must not hold
the revision's row already.
"""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from store_backend import ON_POSTGRESQL
from storehelp import assert_counters_match
from mailconsole.store import queue, revisions
from mailconsole.store.mailings import get_mailing
from mailconsole.store.queue import Outcome

pytestmark = pytest.mark.skipif(not ON_POSTGRESQL, reason="row locks are PostgreSQL's (SQLite locks the whole file)")


def _waiting_for_a_lock(probe: sa.Connection) -> bool:
    with probe.begin():
        return bool(probe.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )).scalar())


@pytest.mark.parametrize("first", ["sent", "failed"])
def test_a_record_waiting_for_its_mailing_holds_no_revision(store, make_mailing, first: str):
    mid = make_mailing(4)
    rid = revisions.newest_revision(store, mid).id
    claimed = queue.claim(store, "engine-a", 4, lease_seconds=600)
    second = "failed" if first == "sent" else "sent"
    outcomes = [Outcome(c.id, c.mailing_id, kind, revision_id=rid, error=None if kind == "sent" else "550 no")
                for c, kind in zip(claimed, [first, first, second, second])]
    outside = sa.create_engine(store.engine.url)
    errors: list[BaseException] = []
    with outside.connect() as holder, outside.connect() as probe:
        held = holder.begin()
        holder.execute(sa.text("SELECT 1 FROM mailings WHERE id = :m FOR UPDATE"), {"m": mid})

        def record() -> None:
            try:
                queue.record(store, "engine-a", outcomes)
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        worker = threading.Thread(target=record)
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while not _waiting_for_a_lock(probe):
                assert time.monotonic() < deadline, "the record never waited for the mailing's row"
                time.sleep(0.01)
            # The revision's row is free: another engine's record may lock it, then the
            # mailing's, without waiting in a circle.
            with probe.begin() as trial:
                probe.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
                probe.execute(sa.text("SELECT 1 FROM revisions WHERE id = :r FOR UPDATE"), {"r": rid})
                trial.rollback()
        finally:
            held.rollback()
            worker.join(10)
    outside.dispose()
    assert not errors and not worker.is_alive()
    m = get_mailing(store, mid)
    assert (m.sent, m.failed, m.in_flight) == (2, 2, 0)
    assert_counters_match(store)
