"""Rescheduling a planned mailing moves its messages' due time with it."""

from __future__ import annotations

import pytest
from storehelp import ALICE, SENDER, recipients

from mailconsole.store import Refused, Store, mailings, queue
from mailconsole.store.importer import create_mailing

HOUR = 3600.0


def due_times(store, mid):
    with store.read() as conn:
        return conn.exec_driver_sql(f"SELECT DISTINCT due_at FROM messages WHERE mailing_id={mid}").scalars().all()


def test_later_and_then_now(store, clock, make_mailing):
    mid = make_mailing(3, at=clock.now + HOUR)
    m = mailings.reschedule(store, ALICE, mid, clock.now + 5 * HOUR)
    assert (m.status, m.scheduled_at) == ("planned", clock.now + 5 * HOUR)
    assert due_times(store, mid) == [clock.now + 5 * HOUR]
    assert queue.claim(store, "e1", 10, 60) == []

    assert mailings.reschedule(store, ALICE, mid, clock.now).status == "sending"
    assert len(queue.claim(store, "e1", 10, 60)) == 3


def test_a_started_mailing_cannot_be_rescheduled(store, clock, make_mailing):
    mid = make_mailing(3)
    queue.claim(store, "e1", 1, 60)
    with pytest.raises(Refused, match="has started"):
        mailings.reschedule(store, ALICE, mid, clock.now + HOUR)


def test_not_while_it_is_being_prepared(store, db_path, clock, csv_file):
    operator = Store(str(db_path), clock=clock)
    refusals: list[str] = []

    def progress(done: int, total: int) -> None:
        if done == 10:
            [m] = mailings.list_mailings(operator, planned=True)
            mailings.pause(operator, ALICE, m.id)  # paused, but the import still runs
            with pytest.raises(Refused) as info:
                mailings.reschedule(operator, ALICE, m.id, clock.now + 9 * HOUR)
            refusals.append(str(info.value))

    result = create_mailing(store, ALICE, name="n", sender=SENDER, subject="Hi", text_body="x", html_body=None,
                            recipients=csv_file(recipients(20)), at=clock.now + HOUR, batch_size=10, progress=progress)
    operator.close()
    assert refusals == [f"mailing {result.mailing_id} is still being prepared; reschedule it once its import has finished"]
    assert due_times(store, result.mailing_id) == [clock.now + HOUR]  # one due time for every row
