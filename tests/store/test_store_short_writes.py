"""Bulk work never holds the write lock long: it commits in many small transactions.

Each test runs a bulk job over 100,000 rows in another process that records the
CPU time of each of its write transactions (BEGIN IMMEDIATE to COMMIT, traced
on its SQLite connections). CPU time, not the wall clock: on a loaded machine
the OS may pause the job while it holds the lock, which says nothing about the
job. Meanwhile the test takes the write lock again and again as the stop does
(BEGIN IMMEDIATE polled every 0.5 ms), so the job really competes for it; the
wall-clock waits are measured in bench/stop_latency.py.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import func, select
from csvfiles import write_csv
from storehelp import ALICE, SENDER, assert_counters_match, recipients

from mailconsole.store import Store, accounts, mailings
from mailconsole.store.backends.sqlite import begin_immediate_polling
from mailconsole.store.importer import create_mailing
from mailconsole.store.schema import messages

ROWS = 100_000
# CPU seconds one write transaction of the job may take. Transactions aim at ~10 ms
# of the wall clock (seen here: 10-17 ms CPU at most, once 40 ms); before, the
# resume's single transaction over these rows took ~0.5 s, and its last one
# imported a module while holding the lock (75 ms).
MAX_CPU = 0.1

# Records the thread CPU time of each write transaction on the child's connections.
TRACE = """
import json, time
from sqlalchemy import event
spans, began = [], {}

@event.listens_for(store.engine, "connect")
def _trace(dbapi_conn, _record):
    def seen(sql):
        head = sql.lstrip().upper()
        if head.startswith("BEGIN IMMEDIATE"):  # a busy attempt is simply tried again: keep the last
            began["at"] = time.thread_time()
        elif head.startswith(("COMMIT", "ROLLBACK")) and "at" in began:
            spans.append(time.thread_time() - began.pop("at"))
    dbapi_conn.set_trace_callback(seen)

store.engine.dispose()  # connections from now on are traced
"""


def assert_short(spans: list[float]) -> None:
    order = sorted(range(len(spans)), key=spans.__getitem__)
    print("slowest transactions (index, ms):", [(i, round(spans[i] * 1000, 1)) for i in order[-4:]])
    spans = sorted(spans)
    shown = f"longest write transactions {[round(s * 1000, 1) for s in spans[-3:]]} ms CPU of {len(spans)}"
    assert len(spans) >= 5 and spans[-1] < MAX_CPU, shown


def measure_waits(db_path, job: str) -> list[float]:
    """Run `job` (Python, with `store` open on db_path) in a child competing with our takes of the lock;
    returns the CPU time of each of the child's write transactions."""
    code = "import sys\nfrom mailconsole.store import Store, Actor\nstore = Store(sys.argv[1])\n" + TRACE
    code += textwrap.dedent(job)
    code += "\nprint(json.dumps(spans))\nprint('done', flush=True)\n"
    child = subprocess.Popen([sys.executable, "-c", code, str(db_path)], stdout=subprocess.PIPE, text=True)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=0")
    waits: list[float] = []
    try:
        while child.poll() is None:
            t0 = time.perf_counter()
            begin_immediate_polling(conn, patience=60)
            waits.append(time.perf_counter() - t0)
            conn.execute("ROLLBACK")
            time.sleep(0.005)
        out = child.stdout.read().strip().splitlines()
        assert out[-1:] == ["done"], "the bulk job failed"
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        conn.close()
    assert len(waits) > 20, "the job ended before it could be measured"
    return json.loads(out[-2])


def big_mailing(store: Store, tmp_path, *, at: float | None = None) -> int:
    path = write_csv(tmp_path / "big.csv", recipients(ROWS))
    return create_mailing(store, ALICE, name="big", sender=SENDER, subject="Hi {{ name }}",
                          text_body="Dear {{ name }}\n", html_body=None, recipients=path, at=at).mailing_id


@pytest.fixture
def real_store(db_path):
    store = Store(str(db_path))  # the real clock: the child process has it too
    yield store
    store.close()


def test_an_import_leaves_the_lock_free_within_milliseconds(real_store, db_path, tmp_path):
    path = write_csv(tmp_path / "big.csv", recipients(ROWS))
    spans = measure_waits(db_path, f"""
        from pathlib import Path
        from mailconsole.store.importer import create_mailing
        create_mailing(store, Actor("importer"), name="big", sender="{SENDER}", subject="Hi {{{{ name }}}}",
                       text_body="Dear {{{{ name }}}}", html_body=None, recipients=Path({str(path)!r}))
    """)
    assert_short(spans)
    assert mailings.list_mailings(real_store)[0].recipients == ROWS
    assert_counters_match(real_store)


def test_a_purge_leaves_the_lock_free_within_milliseconds(real_store, db_path, tmp_path):
    mid = big_mailing(real_store, tmp_path)
    mailings.delete_mailing(real_store, ALICE, mid)
    spans = measure_waits(db_path, """
        from mailconsole.store.mailings import purge_deleted
        assert purge_deleted(store) == %d
    """ % ROWS)
    assert_short(spans)
    assert_counters_match(real_store)


def test_a_resume_suspending_every_row_leaves_the_lock_free_within_milliseconds(real_store, db_path, tmp_path):
    mid = big_mailing(real_store, tmp_path, at=time.time() - 8 * accounts.DAY)
    accounts.stop(real_store, ALICE)
    spans = measure_waits(db_path, """
        from mailconsole.store import accounts
        plan = accounts.resume(store, Actor("operator"))
        assert plan.stopped and plan.to_suspend == %d and plan.to_send == 0, plan
    """ % ROWS)
    assert_short(spans)
    m = mailings.get_mailing(real_store, mid)
    assert (m.suspended, m.queued, m.status) == (ROWS, 0, "sent")
    assert not accounts.state(real_store).stopped
    assert_counters_match(real_store)
    # And putting them all back in the queue (requeue) is as short.
    accounts.stop(real_store, ALICE)  # nothing is sent meanwhile
    spans = measure_waits(db_path, f"""
        from mailconsole.store import mailings
        assert mailings.requeue_suspended(store, Actor("operator"), {mid}) == {ROWS}
    """)
    assert_short(spans)
    m = mailings.get_mailing(real_store, mid)
    assert (m.suspended, m.queued, m.status) == (0, ROWS, "sending")
    assert_counters_match(real_store)


def test_a_reschedule_leaves_the_lock_free_within_milliseconds(real_store, db_path, tmp_path):
    mid = big_mailing(real_store, tmp_path, at=time.time() + 86400)
    later = time.time() + 2 * 86400
    spans = measure_waits(db_path, f"""
        from mailconsole.store import mailings
        mailings.reschedule(store, Actor("operator"), {mid}, {later!r})
    """)
    assert_short(spans)
    with real_store.read() as conn:
        due = conn.execute(select(func.min(messages.c.due_at), func.max(messages.c.due_at))
                           .where(messages.c.mailing_id == mid)).one()
    assert tuple(due) == (later, later)
    assert mailings.get_mailing(real_store, mid).status == "planned"


def test_a_resume_that_meets_a_new_stop_leaves_the_account_stopped(real_store, tmp_path):
    """The steps run while the account stays stopped; a new stop meanwhile (another generation) ends them."""
    mid = big_mailing(real_store, tmp_path, at=time.time() - 8 * accounts.DAY)
    accounts.stop(real_store, ALICE)
    calls = 0
    original = accounts.suspend_stale

    def suspend_then_interfere(conn, mailing_id, cutoff, limit=None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        n = original(conn, mailing_id, cutoff, limit)
        if calls == 2:  # someone resumes and stops again between two steps
            conn.execute(accounts.update(accounts.accounts).values(generation=accounts.accounts.c.generation + 1))
        return n

    accounts.suspend_stale = suspend_then_interfere
    try:
        plan = accounts.resume(real_store, ALICE)
    finally:
        accounts.suspend_stale = original
    assert not plan.stopped  # not resumed by us
    assert accounts.state(real_store).stopped
    m = mailings.get_mailing(real_store, mid)
    assert 0 < m.suspended < ROWS and m.suspended + m.queued == ROWS
    assert_counters_match(real_store)
