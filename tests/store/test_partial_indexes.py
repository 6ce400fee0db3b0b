"""The partial message indexes (schema version 6): every read that needs one still finds it.

A partial index serves only a query whose WHERE contains the index's condition;
a query written without it would walk a whole mailing (or the table) instead,
and nothing else would fail: it would only be slow with a million messages. So
the statements the store really sends (captured from the functions the engine,
the console and the CLI call) are EXPLAINed on a real SQLite file, and each must
search the index it was written for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailconsole.store import Store, accounts, mailing_detail, queue, recipients, revisions, schema
from mailconsole.store.importer import create_mailing
from mailconsole.store.queue import Outcome
from storehelp import ALICE, SENDER
from storehelp import recipients as rows

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@contextmanager
def statements(store: Store) -> Iterator[list[tuple[str, object]]]:
    """Every (statement, parameters) on the messages table sent inside the block."""
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, stmt, params, context, executemany):  # type: ignore[no-untyped-def]
        if " messages" in stmt and not stmt.startswith("EXPLAIN"):
            seen.append((stmt, params[0] if executemany and params else params))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)


def plans(db: Path, seen: list[tuple[str, object]]) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [" / ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + stmt, params).fetchall())
                for stmt, params in seen]
    finally:
        conn.close()


def only_plan(store: Store, db: Path, call: Callable[[], object]) -> list[str]:
    with statements(store) as seen:
        call()
    return plans(db, [s for s in seen if not s[0].lstrip().upper().startswith("INSERT")])


@pytest.fixture
def sqlite_store(tmp_path: Path, clock):  # type: ignore[no-untyped-def]
    db = tmp_path / "plans.db"
    s = Store(str(db), clock=clock)
    yield s, db
    s.close()


@pytest.fixture
def mailing(sqlite_store, csv_file) -> int:  # type: ignore[no-untyped-def]
    store, _ = sqlite_store
    return create_mailing(store, ALICE, name="n", sender=SENDER, subject="Hi {{ name }}",
                                   text_body="Dear {{ name }}\n", html_body=None,
                                   recipients=csv_file(rows(300)), at=None).mailing_id


def test_the_claim_searches_the_claim_index_and_a_record_the_primary_key(sqlite_store, mailing):
    store, db = sqlite_store
    claim_plan = only_plan(store, db, lambda: queue.claim(store, "e", 100, lease_seconds=60))
    assert any("ix_messages_claim (mailing_id=? AND state=? AND due_at<?)" in p for p in claim_plan), claim_plan
    claimed = queue.claim(store, "e", 100, lease_seconds=60)
    rid = revisions.newest_revision(store, mailing).id
    outcomes = ([Outcome(c.id, c.mailing_id, "sent", rid) for c in claimed[:80]]
                + [Outcome(c.id, c.mailing_id, "failed", rid, error="550 no", fail_kind="smtp") for c in claimed[80:]])
    record_plan = only_plan(store, db, lambda: queue.record(store, "e", outcomes))
    moves = [p for p in record_plan if "messages" in p and "mailings" not in p]
    assert moves and all("INTEGER PRIMARY KEY" in p for p in moves), record_plan


def test_leases_are_found_through_the_index_of_claimed_messages(sqlite_store, mailing):
    store, db = sqlite_store
    queue.claim(store, "e", 50, lease_seconds=60)
    for call in (lambda: queue.renew_leases(store, "e", 60), lambda: queue.expire_leases(store),
                 lambda: queue.release_all(store, "e")):
        [plan] = only_plan(store, db, call)[:1]
        assert "ix_messages_state (state=?" in plan, plan


@pytest.mark.parametrize("state", ["sent", "queued", "failed"])
def test_the_recipients_export_walks_the_recipients_index(sqlite_store, mailing, state):
    store, db = sqlite_store
    claimed = queue.claim(store, "e", 20, lease_seconds=60)
    rid = revisions.newest_revision(store, mailing).id
    queue.record(store, "e", [Outcome(c.id, c.mailing_id, "sent", rid) for c in claimed[:10]]
                 + [Outcome(c.id, c.mailing_id, "failed", rid, error="550", fail_kind="smtp") for c in claimed[10:]])
    got = only_plan(store, db, lambda: list(recipients.iter_recipients(store, mailing, state=state)))
    chunks = [p for p in got if "ix_messages_recipients" in p]
    assert chunks and all("mailing_id=? AND state=? AND revision_id=? AND id>?" in p for p in chunks), got
    assert not any("TEMP B-TREE" in p for p in got), got


def test_the_console_and_resume_reads_search_an_index(sqlite_store, mailing):
    store, db = sqlite_store
    for call in (lambda: mailing_detail.next_recipient(store, mailing), lambda: mailing_detail.last_errors(store, mailing),
                 lambda: accounts.resume_preview(store)):
        got = [p for p in only_plan(store, db, call) if "messages" in p]
        assert got and all("ix_messages_claim" in p for p in got), got


def test_state_is_refuses_what_is_not_a_message_state():
    with pytest.raises(ValueError, match="not message states"):
        schema.state_is("queued'; DROP TABLE messages; --")
    with pytest.raises(ValueError):
        schema.state_is()
