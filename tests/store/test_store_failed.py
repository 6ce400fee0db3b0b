"""Failed messages: why they failed, a mailing that sent nothing shows failed, and requeue --failed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from storehelp import ALICE, assert_counters_match, sent

from mailconsole.store import NotFound, Refused, accounts, audit, mailings, queue
from mailconsole.store.schema import messages


def fail(store, claimed, kind="template"):  # type: ignore[no-untyped-def]
    queue.record(store, "e1", [queue.Outcome(c.id, c.mailing_id, "failed", error="boom", fail_kind=kind) for c in claimed])


def test_the_reason_kind_is_recorded(store, make_mailing):
    mid = make_mailing(2)
    a, b = queue.claim(store, "e1", 2, 60)
    fail(store, [a], "template")
    fail(store, [b], "smtp")
    with store.read() as conn:
        kinds = dict(conn.execute(select(messages.c.id, messages.c.fail_kind).where(messages.c.mailing_id == mid)).all())
    assert kinds == {a.id: "template", b.id: "smtp"}


def test_a_mailing_that_sent_nothing_and_failed_is_failed_not_sent(store, make_mailing):
    every = make_mailing(3, name="all failed")
    fail(store, queue.claim(store, "e1", 3, 60))
    assert mailings.get_mailing(store, every).status == "failed"
    some = make_mailing(3, name="some failed")
    claimed = queue.claim(store, "e1", 3, 60)
    fail(store, claimed[:1])
    queue.record(store, "e1", sent(store, claimed[1:]))
    m = mailings.get_mailing(store, some)
    assert (m.status, m.sent, m.failed) == ("sent", 2, 1)  # partly failed: sent, with its failed count
    with pytest.raises(Refused, match="already failed"):
        mailings.pause(store, ALICE, every)


def test_resume_finishing_an_all_failed_mailing_makes_it_failed(store, clock, make_mailing):
    mid = make_mailing(3)
    fail(store, queue.claim(store, "e1", 2, 60))
    accounts.stop(store, ALICE)
    clock.advance(8 * 86400)
    accounts.resume(store, ALICE)  # the last one is suspended by the 7-day rule: nothing left to send
    m = mailings.get_mailing(store, mid)
    assert (m.status, m.failed, m.suspended) == ("failed", 2, 1)


def test_requeue_failed_puts_them_back_in_short_batches(store, make_mailing):
    mid = make_mailing(7)
    claimed = queue.claim(store, "e1", 7, 60)
    fail(store, claimed)
    assert mailings.get_mailing(store, mid).status == "failed"

    assert mailings.requeue_failed(store, ALICE, mid, batch=3) == 7
    m = mailings.get_mailing(store, mid)
    assert (m.status, m.queued, m.failed) == ("sending", 7, 0)
    with store.read() as conn:
        rows = conn.execute(
            select(messages.c.state, messages.c.attempts, messages.c.last_error, messages.c.fail_kind)
            .where(messages.c.mailing_id == mid)
        ).all()
    assert set(rows) == {("queued", 0, None, None)}
    assert_counters_match(store)
    entry = audit.entries(store, limit=1)[0]
    assert (entry.action, entry.details["requeued"], entry.details["kinds"]) == ("requeue", 7, {"template": 7})
    assert [e.action for e in audit.entries(store, limit=10)].count("requeue") == 1  # one entry, not one per batch
    assert len(queue.claim(store, "e1", 10, 60)) == 7  # and the engine sends them again


def test_requeue_failed_refusals(store, make_mailing):
    mid = make_mailing(2)
    with pytest.raises(Refused, match="has no failed messages"):
        mailings.requeue_failed(store, ALICE, mid)
    fail(store, queue.claim(store, "e1", 2, 60))
    mailings.delete_mailing(store, ALICE, mid)
    with pytest.raises(NotFound, match="was deleted"):
        mailings.requeue_failed(store, ALICE, mid)


def test_a_paused_mailing_stays_paused_when_its_failed_are_requeued(store, make_mailing):
    mid = make_mailing(3)
    fail(store, queue.claim(store, "e1", 1, 60))
    mailings.pause(store, ALICE, mid)
    assert mailings.requeue_failed(store, ALICE, mid) == 1
    m = mailings.get_mailing(store, mid)
    assert (m.status, m.queued) == ("paused", 3)
