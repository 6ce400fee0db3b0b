"""What the relays hold (store/relays.py): recorded from the dot's reply, moved only as confirmed."""

from __future__ import annotations

from sqlalchemy import select
from storehelp import ALICE, actual_states, assert_counters_match

from store_backend import sqlite_only
from mailconsole.store import accounts, mailings, queue, relays, revisions
from mailconsole.store.schema import messages

RELAY = "10.0.0.5:25"


def _relay(store, mid: int, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Claim and record n messages as a relay accepted them, queue ids Q1..Qn."""
    claimed = queue.claim(store, "engine-1", n, lease_seconds=60)
    rev = revisions.newest_revision(store, mid)
    queue.record(store, "engine-1", [
        queue.Outcome(c.id, c.mailing_id, "sent", rev.id, relay_reply=f"250 2.0.0 Ok: queued as Q{i}")
        for i, c in enumerate(claimed, 1)], relay=RELAY)
    return [c.id for c in claimed]


def _rows(store) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(
            select(messages.c.relay_queue_id, messages.c.relay_state, messages.c.relay, messages.c.state))}


def test_a_stop_wants_held_what_its_account_has_queued_at_the_relay(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(5)
    _relay(store, mid, 5)
    assert {q: r[:3] for q, r in _rows(store).items()} == {f"Q{i}": ("queued", RELAY, "sent") for i in range(1, 6)}
    acc = accounts.state(store).id
    assert relays.to_act_on(store, RELAY, []) == []  # not stopped: nothing to do
    assert relays.to_act_on(store, "10.9.9.9:25", [acc]) == []  # another relay's messages are not ours
    wanted = relays.to_act_on(store, RELAY, [acc])
    assert sorted(r.queue_id for r in wanted) == [f"Q{i}" for i in range(1, 6)]
    relays.apply(store, [relays.Change(r.message_id, relays.HELD) for r in wanted])
    assert relays.held_per_account(store, RELAY) == {acc: 5}
    assert relays.to_act_on(store, RELAY, [acc]) == []  # held: nothing more
    released = relays.to_act_on(store, RELAY, [])  # resumed: release them
    assert {r.relay_state for r in released} == {relays.HELD} and len(released) == 5


def test_a_final_outcome_is_never_moved_back(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(2)
    first, second = _relay(store, mid, 2)
    assert relays.apply(store, [relays.Change(first, relays.DELIVERED, "250 ok")]) == 1
    # A hold the relay confirmed for a message it meanwhile delivered: the delivery stands.
    assert relays.apply(store, [relays.Change(first, relays.HELD), relays.Change(second, relays.HELD)]) == 1
    assert _rows(store)["Q1"][0] == relays.DELIVERED and _rows(store)["Q2"][0] == relays.HELD
    assert set(relays.find(store, RELAY, ["Q1", "Q2"])) == {"Q2"}  # only what is still at the relay


def test_the_seven_day_rule_at_the_relay_suspends_the_message_here_with_its_counters(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    mid = make_mailing(3)
    ids = _relay(store, mid, 3)
    rev = revisions.newest_revision(store, mid)
    relays.apply(store, [relays.Change(i, relays.HELD) for i in ids])
    assert relays.expire(store, ids[:2], "held over 7 days") == 2
    assert actual_states(store, mid) == {"sent": 1, "suspended": 2}
    m = mailings.get_mailing(store, mid)
    assert (m.sent, m.suspended) == (1, 2)
    assert revisions.newest_revision(store, mid).sent == rev.sent - 2
    assert_counters_match(store)
    assert mailings.requeue_suspended(store, ALICE, mid) == 2  # a requeue sends them again


@sqlite_only("reads SQLite's query plan (EXPLAIN QUERY PLAN)")
def test_the_queries_use_the_partial_index_of_what_relays_hold(store) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store.schema import mailings as mailings_table

    stop_query = (select(messages.c.id).join(mailings_table, mailings_table.c.id == messages.c.mailing_id)
                  .where(relays.AT_RELAY, messages.c.relay_state == "queued"))
    by_id = select(messages.c.id).where(relays.AT_RELAY, messages.c.relay_queue_id.in_(["A", "B"]))
    with store.read() as conn:
        for q in (stop_query, by_id):
            sql = str(q.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "ix_messages_at_relay" in plan, plan


def _bounce(store, message_id: int, reply: str) -> int:  # type: ignore[no-untyped-def]
    return relays.apply(store, [relays.Change(message_id, relays.BOUNCED, reply)])


def test_a_hard_bounce_suppresses_the_address_once_when_the_policy_says_so(store, make_mailing) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import audit, policy, suppressions

    mid = make_mailing(4)
    ids = _relay(store, mid, 4)
    hard = "host mx.example.net[192.0.2.9] said: 550 5.1.1 <user0@example.com>: User unknown (in reply to RCPT TO command)"
    assert _bounce(store, ids[0], hard) == 1
    assert suppressions.list_suppressions(store) == []  # off by default: recorded as bounced only
    policy.set_values(store, ALICE, {"suppress_bounces": "on"})
    _bounce(store, ids[1], hard.replace("user0", "user1"))
    _bounce(store, ids[2], "host mx said: 452 4.2.2 mailbox full; message expired")  # not a hard bounce
    _bounce(store, ids[1], hard)  # the agent retrying its batch: no second row, no second audit entry
    rows = suppressions.list_suppressions(store)
    assert [(s.email, s.created_by) for s in rows] == [(_email(store, ids[1]), "relay")]
    assert rows[0].reason.startswith("bounced: host mx.example.net") and "550 5.1.1" in rows[0].reason
    (entry,) = [e for e in audit.entries(store) if e.action == "suppress-bounces"]
    assert entry.actor == "relay" and entry.details["count"] == 1 and entry.details["source"] == "relay"
    with store.read() as conn:
        assert suppressions.read_mark(conn) == 1  # the gate checks messages claimed before it again


def _email(store, message_id: int) -> str:  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return conn.execute(select(messages.c.email).where(messages.c.id == message_id)).scalar_one()
