"""Pausing one mailing: the claim skips it; unpausing restores the status it would have had."""

from __future__ import annotations

import pytest
from storehelp import ALICE, assert_counters_match, sent

from mailconsole.store import NotFound, Refused, audit, mailings, queue
from mailconsole.store.queue import Outcome

HOUR = 3600.0


def status(store, mid):
    return mailings.get_mailing(store, mid).status


def test_claim_skips_a_paused_mailing_only(store, make_mailing):
    paused = make_mailing(3, name="paused")
    other = make_mailing(2, name="other")
    mailings.pause(store, ALICE, paused)

    got = queue.claim(store, "e1", 10, 60)

    assert {c.mailing_id for c in got} == {other}
    assert status(store, paused) == "paused"
    mailings.unpause(store, ALICE, paused)
    assert {c.mailing_id for c in queue.claim(store, "e1", 10, 60)} == {paused}


def test_unpause_restores_sending(store, make_mailing):
    mid = make_mailing(3)
    queue.claim(store, "e1", 1, 60)
    assert mailings.pause(store, ALICE, mid).status == "paused"
    assert mailings.unpause(store, ALICE, mid).status == "sending"


def test_unpause_restores_planned(store, clock, make_mailing):
    mid = make_mailing(3, at=clock.now + HOUR)
    assert status(store, mid) == "planned"
    mailings.pause(store, ALICE, mid)
    assert mailings.unpause(store, ALICE, mid).status == "planned"
    # A planned mailing whose time passed while it was paused starts sending.
    mailings.pause(store, ALICE, mid)
    clock.advance(2 * HOUR)
    assert mailings.unpause(store, ALICE, mid).status == "sending"


def test_unpause_after_the_last_message_went_out_is_sent(store, make_mailing):
    mid = make_mailing(2)
    claimed = queue.claim(store, "e1", 10, 60)
    mailings.pause(store, ALICE, mid)
    # The two in flight had passed the final-dot gate before the pause.
    queue.record(store, "e1", sent(store, claimed))
    assert status(store, mid) == "paused"
    assert mailings.unpause(store, ALICE, mid).status == "sent"
    assert_counters_match(store)


def test_pause_is_audited_and_idempotent(store, make_mailing):
    mid = make_mailing(2)
    mailings.pause(store, ALICE, mid)
    mailings.pause(store, ALICE, mid)
    actions = [e.action for e in audit.entries(store, limit=10)]
    assert actions.count("pause") == 1
    mailings.unpause(store, ALICE, mid)
    assert audit.entries(store, limit=1)[0].details == {"status": "sending"}


def test_refusals(store, make_mailing):
    mid = make_mailing(1)
    with pytest.raises(Refused, match="not paused"):
        mailings.unpause(store, ALICE, mid)
    claimed = queue.claim(store, "e1", 1, 60)
    queue.record(store, "e1", [Outcome(claimed[0].id, mid, "sent")])
    with pytest.raises(Refused, match="already sent"):
        mailings.pause(store, ALICE, mid)
    with pytest.raises(NotFound, match="mailing 999 does not exist"):
        mailings.pause(store, ALICE, 999)
