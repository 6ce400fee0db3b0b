"""Leases: a crashed engine's claims come back (counted as possible duplicates); a lost lease is ignored."""

from __future__ import annotations

from storehelp import ALICE, actual_states, assert_counters_match, sent

from mailconsole.store import mailings, queue
from mailconsole.store.queue import Outcome


def test_expired_leases_return_to_the_queue_counted_as_recovered(store, clock, make_mailing):
    mid = make_mailing(5)
    dead = queue.claim(store, "dead-engine", 3, lease_seconds=30)
    live = queue.claim(store, "live-engine", 2, lease_seconds=300)
    assert len(dead) == 3 and len(live) == 2

    clock.advance(29)
    assert queue.expire_leases(store) == 0  # not yet expired
    clock.advance(2)
    assert queue.expire_leases(store) == 3

    m = mailings.get_mailing(store, mid)
    assert (m.queued, m.in_flight, m.recovered) == (3, 2, 3)
    assert actual_states(store, mid) == {"queued": 3, "claimed": 2}
    assert_counters_match(store)
    # Reclaimed, the attempt counter shows they were tried before.
    again = queue.claim(store, "live-engine", 10, 300)
    assert sorted(c.attempts for c in again) == [2, 2, 2]


def test_record_ignores_messages_whose_lease_was_lost(store, clock, make_mailing):
    mid = make_mailing(2)
    slow = queue.claim(store, "slow", 2, lease_seconds=10)
    clock.advance(11)
    queue.expire_leases(store)
    fast = queue.claim(store, "fast", 2, lease_seconds=10)

    # The slow engine reports late: its outcomes must not touch the rows "fast" now holds.
    queue.record(store, "slow", [Outcome(c.id, mid, "failed", error="550 late") for c in slow])
    assert actual_states(store, mid) == {"claimed": 2}
    queue.record(store, "fast", sent(store, fast))
    assert actual_states(store, mid) == {"sent": 2}
    assert mailings.get_mailing(store, mid).status == "sent"
    assert_counters_match(store)


def test_record_moves_counters_by_the_rows_not_by_what_the_caller_says(store, make_mailing):
    a = make_mailing(1, name="a")
    b = make_mailing(1, name="b")
    claimed = {c.mailing_id: c for c in queue.claim(store, "e1", 10, 60)}
    # A confused caller names the wrong mailing: the counters still follow the real row.
    queue.record(store, "e1", [Outcome(claimed[a].id, b, "failed", error="boom")])
    assert actual_states(store, a) == {"failed": 1}
    assert_counters_match(store)


def test_retry_and_release(store, clock, make_mailing):
    mid = make_mailing(2)
    c1, c2 = queue.claim(store, "e1", 2, 60)
    queue.record(store, "e1", [
        Outcome(c1.id, mid, "retry", error="451 try later", retry_at=clock.now + 600),
        Outcome(c2.id, mid, "release"),
    ])
    # The released one is due now (attempt not counted); the retry waits its turn.
    [again] = queue.claim(store, "e1", 10, 60)
    assert (again.id, again.attempts) == (c2.id, 1)
    clock.advance(600)
    [later] = queue.claim(store, "e1", 10, 60)
    assert (later.id, later.attempts) == (c1.id, 2)
    assert_counters_match(store)


def test_release_all_returns_only_this_engines_claims(store, make_mailing):
    mid = make_mailing(5)
    queue.claim(store, "stopping", 3, 60)
    queue.claim(store, "other", 1, 60)
    assert queue.release_all(store, "stopping") == 3
    assert actual_states(store, mid) == {"queued": 4, "claimed": 1}
    m = mailings.get_mailing(store, mid)
    assert m.recovered == 0  # a graceful release never passed the dot: no duplicate
    assert_counters_match(store)


def test_renew_keeps_a_lease_alive(store, clock, make_mailing):
    make_mailing(1)
    queue.claim(store, "e1", 1, lease_seconds=10)
    clock.advance(8)
    assert queue.renew_leases(store, "e1", 10) == 1
    clock.advance(8)
    assert queue.expire_leases(store) == 0


def test_paused_mailing_claims_can_still_be_recorded(store, make_mailing):
    """Messages whose dot was already on the wire are counted even after a pause."""
    mid = make_mailing(2)
    claimed = queue.claim(store, "e1", 2, 60)
    mailings.pause(store, ALICE, mid)
    queue.record(store, "e1", sent(store, claimed[:1]) + [Outcome(claimed[1].id, mid, "release")])
    m = mailings.get_mailing(store, mid)
    assert (m.status, m.sent, m.queued, m.in_flight) == ("paused", 1, 1, 0)
