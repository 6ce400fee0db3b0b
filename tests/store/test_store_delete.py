"""Deleting a mailing in any status: it leaves every list and total at once; the audit log remembers."""

from __future__ import annotations

import textwrap
import threading

import pytest
from storehelp import ALICE, SENDER, actual_states, assert_counters_match, recipients, sent, python_child, rest_of_output

from mailconsole.store import NotFound, Refused, Store, accounts, audit, mailings, queue, status
from mailconsole.store.importer import create_mailing
from mailconsole.store.queue import Outcome

HOUR = 3600.0


def assert_gone(store, mid):
    assert mid not in [m.id for m in mailings.list_mailings(store, planned=True)]
    assert mid not in [m.id for m in mailings.list_mailings(store, only_planned=True)]
    assert mid not in [m["id"] for m in status.overview(store).as_dict()["mailings"]]
    with pytest.raises(NotFound, match="was deleted"):
        mailings.get_mailing(store, mid)


def delete_entry(store, mid):
    return next(e for e in audit.entries(store, limit=100) if e.action == "delete" and e.mailing_id == mid)


def test_delete_planned(store, clock, make_mailing):
    keep = make_mailing(2, name="keep")
    mid = make_mailing(4, at=clock.now + HOUR)
    summary = mailings.delete_mailing(store, ALICE, mid)
    assert (summary.status, summary.sent, summary.dropped) == ("planned", 0, 4)
    assert_gone(store, mid)
    assert status.overview(store).queue["queued"] == 2  # only `keep` is left
    assert [m.id for m in mailings.list_mailings(store, planned=True)] == [keep]


def test_delete_sending_with_claimed_messages(store, make_mailing):
    other = make_mailing(3, name="other")
    mid = make_mailing(10)
    claimed = [c for c in queue.claim(store, "e1", 13, 60) if c.mailing_id == mid]
    queue.record(store, "e1", sent(store, claimed[:4]))

    summary = mailings.delete_mailing(store, ALICE, mid)

    assert (summary.status, summary.sent, summary.dropped) == ("sending", 4, 6)
    assert_gone(store, mid)
    assert status.overview(store).queue == {"queued": 0, "in_flight": 3, "sent": 0, "failed": 0, "suspended": 0, "suppressed": 0}
    details = delete_entry(store, mid).details
    assert (details["sent"], details["dropped"], details["status"]) == (4, 6, "sending")
    # Nothing more can be claimed from it; the engine's gate returns what it still holds.
    assert queue.claim(store, "e2", 100, 60) == []
    queue.record(store, "e1", [Outcome(c.id, mid, "release") for c in claimed[4:]])
    assert mailings.purge_deleted(store) == 6
    assert actual_states(store, mid) == {"sent": 4}  # what went out stays on record
    assert [m.id for m in mailings.list_mailings(store)] == [other]
    assert_counters_match(store)


def test_delete_paused(store, make_mailing):
    mid = make_mailing(3)
    mailings.pause(store, ALICE, mid)
    assert mailings.delete_mailing(store, ALICE, mid).status == "paused"
    assert_gone(store, mid)


def test_delete_sent(store, make_mailing):
    mid = make_mailing(2)
    queue.record(store, "e1", sent(store, queue.claim(store, "e1", 10, 60)))
    assert mailings.get_mailing(store, mid).status == "sent"
    summary = mailings.delete_mailing(store, ALICE, mid)
    assert (summary.sent, summary.dropped) == (2, 0)
    assert_gone(store, mid)
    assert status.overview(store).queue["sent"] == 0


def test_delete_with_suspended_messages_counts_them_dropped(store, clock, make_mailing):
    mid = make_mailing(3)
    accounts.stop(store, ALICE)
    clock.advance(8 * 86400)
    accounts.resume(store, ALICE)
    assert mailings.delete_mailing(store, ALICE, mid).dropped == 3
    assert mailings.purge_deleted(store) == 3
    assert actual_states(store, mid) == {}
    assert_counters_match(store)


def test_delete_twice_is_not_found(store, make_mailing):
    mid = make_mailing(1)
    mailings.delete_mailing(store, ALICE, mid)
    with pytest.raises(NotFound, match=f"mailing {mid} was deleted"):
        mailings.delete_mailing(store, ALICE, mid)
    assert [e.action for e in audit.entries(store, limit=10)].count("delete") == 1


def test_purge_works_in_batches_and_leaves_live_mailings_alone(store, make_mailing):
    keep = make_mailing(5, name="keep")
    mid = make_mailing(25)
    mailings.delete_mailing(store, ALICE, mid)
    assert mailings.purge_deleted(store, batch=10, max_batches=1) == 10
    assert mailings.purge_deleted(store, batch=10) == 15
    assert mailings.purge_deleted(store) == 0
    assert actual_states(store, keep) == {"queued": 5}
    assert_counters_match(store)


def test_delete_while_preparing_stops_the_import(store, db_path, clock, csv_file):
    """An operator (another connection) deletes the mailing between two import batches."""
    path = csv_file(recipients(50))
    operator = Store(str(db_path), clock=clock)
    seen: list[tuple[int, int, str]] = []

    def progress(done: int, total: int) -> None:
        # Runs between batches: the operator's view of the mailing while it is prepared.
        [m] = mailings.list_mailings(operator)
        seen.append((done, total, m.status))
        if done == 20:
            mailings.delete_mailing(operator, ALICE, m.id)

    with pytest.raises(Refused, match="deleted while it was being prepared"):
        create_mailing(store, ALICE, name="wrong list", sender=SENDER, subject="Hi", text_body="x",
                       html_body=None, recipients=path, batch_size=10, progress=progress)
    operator.close()

    assert seen == [(10, 50, "preparing"), (20, 50, "preparing")]
    assert mailings.list_mailings(store, planned=True) == []
    assert status.overview(store).queue["queued"] == 0
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 0
    actions = [e.action for e in audit.entries(store, limit=10)]
    assert actions == ["delete"]  # no 'create': it never became a mailing that could send
    assert delete_entry(store, 1).details["status"] == "preparing"


def test_delete_from_another_thread_during_a_running_import(store, db_path, clock, csv_file):
    path = csv_file(recipients(3000))
    first_batch = threading.Event()
    deleted = threading.Event()
    outcome: list[BaseException] = []

    def progress(done: int, total: int) -> None:
        first_batch.set()
        deleted.wait(5)  # hold the import here until the operator has acted

    def run() -> None:
        try:
            create_mailing(store, ALICE, name="wrong list", sender=SENDER, subject="Hi", text_body="x",
                           html_body=None, recipients=path, batch_size=100, progress=progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    importer = threading.Thread(target=run)
    importer.start()
    try:
        assert first_batch.wait(10)
        operator = Store(str(db_path), clock=clock)
        [m] = mailings.list_mailings(operator)
        assert (m.status, m.recipients, m.expected) == ("preparing", 100, 3000)
        mailings.delete_mailing(operator, ALICE, m.id)
        operator.close()
    finally:
        deleted.set()
        importer.join(10)
    assert not importer.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Refused)
    assert mailings.list_mailings(store, planned=True) == []
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 0


def test_pause_while_preparing_keeps_it_from_sending(store, db_path, clock, csv_file):
    """Paused mid-import it stays paused when the import ends; unpausing then makes it send."""
    path = csv_file(recipients(30))
    operator = Store(str(db_path), clock=clock)
    statuses: list[str] = []

    def progress(done: int, total: int) -> None:
        [m] = mailings.list_mailings(operator)
        if done == 10:
            mailings.pause(operator, ALICE, m.id)
        if done == 20:
            # Unpausing while still importing goes back to preparing, not to sending.
            statuses.append(mailings.unpause(operator, ALICE, m.id).status)
            mailings.pause(operator, ALICE, m.id)

    result = create_mailing(store, ALICE, name="n", sender=SENDER, subject="Hi", text_body="x",
                            html_body=None, recipients=path, batch_size=10, progress=progress)
    operator.close()

    assert statuses == ["preparing"]
    assert result.status == "paused"
    assert queue.claim(store, "e1", 100, 60) == []
    assert mailings.unpause(store, ALICE, result.mailing_id).status == "sending"
    assert len(queue.claim(store, "e1", 100, 60)) == 30


IMPORTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mailconsole.store import Actor, Refused, Store
    from mailconsole.store.importer import create_mailing

    def progress(done, total):
        print(f"progress {done}", flush=True)
        time.sleep(0.05)  # a slow disk: the operator has time to act

    try:
        create_mailing(Store(sys.argv[1]), Actor("importer"), name="wrong list", sender="news@shop.example",
                       subject="Hi", text_body="x", html_body=None, recipients=Path(sys.argv[2]),
                       batch_size=200, progress=progress)
    except Refused as exc:
        print(f"refused: {exc}", flush=True)
        sys.exit(1)
    """
)


def test_delete_from_another_process_stops_its_import(store, db_path, csv_file):
    path = csv_file(recipients(20_000))
    with python_child(IMPORTER, str(db_path), str(path)) as proc:
        first = proc.stdout.readline()
        assert first.startswith("progress")
        [m] = mailings.list_mailings(store)
        assert m.status == "preparing" and 0 < m.recipients < 20_000
        mailings.delete_mailing(store, ALICE, m.id)
        out = rest_of_output(proc, 30)

    assert proc.returncode == 1
    assert f"refused: mailing {m.id} was deleted while it was being prepared; import stopped" in out
    last = max(int(line.split()[1]) for line in (first + out).splitlines() if line.startswith("progress"))
    assert last < 20_000  # it stopped, rather than importing everything first
    assert mailings.list_mailings(store, planned=True) == []
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 0
