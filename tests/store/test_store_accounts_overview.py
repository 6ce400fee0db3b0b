"""Every account in one read: state and totals from the maintained counters only."""

from __future__ import annotations

from storehelp import ALICE, SENDER, recipients
from sqlalchemy import event

from mailconsole.store import accounts, mailings, queue, status
from mailconsole.store.importer import create_mailing


def _mailing(store, csv_file, account: str, n: int, at: float | None = None) -> int:  # type: ignore[no-untyped-def]
    return create_mailing(store, ALICE, account=account, name=f"{account} {n}", sender=SENDER, subject="Hi",
                          text_body="Hello\n", html_body=None, recipients=csv_file(recipients(n)), at=at).mailing_id


def test_every_account_with_its_own_totals(store, clock, csv_file) -> None:  # type: ignore[no-untyped-def]
    accounts.ensure_account(store, "acme")
    accounts.ensure_account(store, "empty")
    _mailing(store, csv_file, "default", 5)
    gone = _mailing(store, csv_file, "default", 4)
    mailings.delete_mailing(store, ALICE, gone, "default")
    _mailing(store, csv_file, "acme", 3)
    _mailing(store, csv_file, "acme", 2, at=clock.now + 3600)  # planned: counted, as in the overview
    accounts.stop(store, ALICE, "default", reason="wrong list")
    claimed = queue.claim(store, "e1", 2, 60)  # only acme can be claimed now
    queue.record(store, "e1", [queue.Outcome(claimed[0].id, claimed[0].mailing_id, "sent")])

    by_name = {a.name: a for a in status.all_accounts(store)}
    assert list(by_name) == ["acme", "default", "empty"]  # by name
    d, a, e = by_name["default"], by_name["acme"], by_name["empty"]
    assert (d.stopped, d.stopped_by, d.reason, d.queued, d.in_flight, d.sent, d.mailings) == (
        True, "alice", "wrong list", 5, 0, 0, 1)  # the deleted mailing left every total
    assert (a.stopped, a.queued, a.in_flight, a.sent, a.mailings) == (False, 3, 1, 1, 2)
    assert (e.stopped, e.queued, e.in_flight, e.sent, e.mailings) == (False, 0, 0, 0, 0)
    # The same totals as each account's own overview.
    for name in by_name:
        q = status.overview(store, name).queue
        assert (q["queued"], q["in_flight"], q["sent"]) == (by_name[name].queued, by_name[name].in_flight,
                                                             by_name[name].sent)
    assert d.as_dict()["by"] == "alice" and a.as_dict()["since"] is None


def test_it_never_reads_the_message_table(store, csv_file) -> None:  # type: ignore[no-untyped-def]
    """Counters only: as cheap on a million queued messages as on none."""
    _mailing(store, csv_file, "default", 3)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = store.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        status.all_accounts(store)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects and not any("messages" in s for s in selects), selects
