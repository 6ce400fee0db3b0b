"""A result batch's relay receipts: queue ids one by one, replies without one shared."""

from __future__ import annotations

from sqlalchemy import select

from mailconsole.store import queue, revisions
from mailconsole.store.queue import Outcome
from mailconsole.store.schema import messages


def test_a_batch_records_each_receipt_and_leaves_a_message_it_no_longer_holds_alone(store, make_mailing):
    mid = make_mailing(6)
    rid = revisions.newest_revision(store, mid).id
    claimed = queue.claim(store, "engine-a", 6, lease_seconds=600)
    lost = claimed[5]
    with store.write() as conn:  # the lease of the last one was taken over meanwhile
        conn.execute(messages.update().where(messages.c.id == lost.id).values(lease_owner="engine-b"))
    replies = ["250 2.0.0 Ok: queued as 4AbC1", "250 2.0.0 Ok", "250 2.0.0 Ok", "250 Accepted",
               "250 2.0.0 Ok: queued as 4AbC5", "250 2.0.0 Ok"]
    queue.record(store, "engine-a", [Outcome(c.id, c.mailing_id, "sent", rid, relay_reply=r)
                                     for c, r in zip(claimed, replies)], relay="relay.example:25")
    with store.read() as conn:
        rows = conn.execute(select(messages.c.id, messages.c.state, messages.c.relay, messages.c.relay_queue_id,
                                   messages.c.relay_state, messages.c.relay_note).order_by(messages.c.id)).all()
    got = {r[0]: r[1:] for r in rows}
    ids = [c.id for c in claimed]
    assert got[ids[0]] == ("sent", "relay.example:25", "4AbC1", "queued", None)
    assert got[ids[1]] == got[ids[2]] == ("sent", "relay.example:25", None, None, "250 2.0.0 Ok")
    assert got[ids[3]] == ("sent", "relay.example:25", None, None, "250 Accepted")
    assert got[ids[4]] == ("sent", "relay.example:25", "4AbC5", "queued", None)
    assert got[lost.id] == ("claimed", None, None, None, None)  # another engine's now: untouched
