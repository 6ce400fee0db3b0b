"""Resume applies the 7-day rule: messages that became due too long ago are suspended, not sent."""

from __future__ import annotations

import pytest
from storehelp import ALICE, actual_states, assert_counters_match

from mailconsole.store import Refused, accounts, audit, mailings, queue

DAY = 86400.0


def counters(store, mid):
    m = mailings.get_mailing(store, mid)
    return (m.queued, m.suspended, m.status)


def test_stale_messages_are_suspended_and_fresh_ones_stay_queued(store, clock, make_mailing):
    old = make_mailing(4, name="old")  # due now (T0)
    clock.advance(2 * DAY)
    fresh = make_mailing(3, name="fresh")  # due at T0 + 2 days
    accounts.stop(store, ALICE)

    clock.advance(6 * DAY)  # old: due 8 days ago; fresh: due 6 days ago
    plan = accounts.resume(store, ALICE)

    assert (plan.to_send, plan.to_suspend, plan.by_mailing) == (3, 4, {old: 4})
    assert actual_states(store, old) == {"suspended": 4}
    assert actual_states(store, fresh) == {"queued": 3}
    # Nothing is left to send for `old`: it counts as sent, its suspended rows stay visible.
    assert counters(store, old) == (0, 4, "sent")
    assert counters(store, fresh) == (3, 0, "sending")
    assert_counters_match(store)
    entry = audit.entries(store, limit=1)[0]
    assert entry.action == "resume" and entry.details["suspended"] == 4 and entry.details["will_send"] == 3


def test_exactly_at_the_limit_is_still_sent(store, clock, make_mailing):
    mid = make_mailing(2)
    accounts.stop(store, ALICE)
    clock.advance(7 * DAY)  # due exactly 7 days ago: not *more* than 7 days
    assert accounts.resume(store, ALICE).to_suspend == 0
    assert actual_states(store, mid) == {"queued": 2}


def test_max_age_is_configurable(store, clock, make_mailing):
    mid = make_mailing(3)
    accounts.stop(store, ALICE)
    clock.advance(2 * DAY)
    assert accounts.resume_preview(store, max_age_days=7).to_suspend == 0
    plan = accounts.resume(store, ALICE, max_age_days=1)
    assert plan.to_suspend == 3
    assert actual_states(store, mid) == {"suspended": 3}


def test_preview_counts_without_changing_anything(store, clock, make_mailing):
    a = make_mailing(5, name="a")
    clock.advance(8 * DAY)
    b = make_mailing(2, name="b")
    accounts.stop(store, ALICE)
    before = [mailings.get_mailing(store, m) for m in (a, b)]
    audit_before = audit.entries(store, limit=100)

    preview = accounts.resume_preview(store)

    assert (preview.stopped, preview.to_send, preview.to_suspend, preview.by_mailing) == (True, 2, 5, {a: 5})
    assert [mailings.get_mailing(store, m) for m in (a, b)] == before
    assert actual_states(store, a) == {"queued": 5}
    assert audit.entries(store, limit=100) == audit_before
    assert accounts.state(store).stopped
    # The resume then does what the preview said.
    done = accounts.resume(store, ALICE)
    assert (done.to_send, done.to_suspend) == (preview.to_send, preview.to_suspend)


def test_suspended_messages_are_never_claimed(store, clock, make_mailing):
    make_mailing(3)
    accounts.stop(store, ALICE)
    clock.advance(8 * DAY)
    accounts.resume(store, ALICE)
    assert queue.claim(store, "e1", 10, 60) == []


def test_requeue_puts_suspended_messages_back_due_now(store, clock, make_mailing):
    mid = make_mailing(3)
    accounts.stop(store, ALICE)
    clock.advance(8 * DAY)
    accounts.resume(store, ALICE)

    assert mailings.requeue_suspended(store, ALICE, mid) == 3

    assert counters(store, mid) == (3, 0, "sending")
    assert len(queue.claim(store, "e1", 10, 60)) == 3
    assert_counters_match(store)
    assert audit.entries(store, limit=1)[0].details == {"requeued": 3}
    # Nothing suspended any more: a second requeue is refused with a reason.
    with pytest.raises(Refused, match="no suspended messages"):
        mailings.requeue_suspended(store, ALICE, mid)


def test_planned_mailing_whose_messages_were_all_suspended_does_not_send_forever(store, clock, make_mailing):
    """Planned for an hour later, then a long stop: on resume everything is suspended."""
    mid = make_mailing(2, at=clock.now + 3600)
    accounts.stop(store, ALICE)
    clock.advance(9 * DAY)
    accounts.resume(store, ALICE)
    assert counters(store, mid) == (0, 2, "planned")
    queue.promote_due(store)
    assert counters(store, mid) == (0, 2, "sent")  # not "sending" with nothing to send
    mailings.requeue_suspended(store, ALICE, mid)
    assert counters(store, mid) == (2, 0, "sending")
