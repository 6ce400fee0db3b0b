"""Operator actions on a PostgreSQL store wake listeners (store/wakeups.py), in their commit."""

from __future__ import annotations

import csv
from pathlib import Path

from mailconsole.store import Actor, Store, accounts, mailings, suppressions
from mailconsole.store.backends.pg_notify import Listener, Wakeup
from mailconsole.store.importer import create_mailing

from .test_pg_notify import next_wakeups

OPERATOR = Actor("operator", "192.0.2.1")


def test_stop_pause_delete_resume_and_new_work_wake_listeners(migrated_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["email"], ["a@example.net"], ["b@example.net"]])
    store = Store(migrated_url)
    listener = Listener(migrated_url)
    try:
        def woken() -> list[Wakeup]:
            return next_wakeups(listener)

        mid = create_mailing(store, OPERATOR, name="n", sender="news@shop.example", subject="s",
                             text_body="t", html_body=None, recipients=path).mailing_id
        assert woken() == [Wakeup("work", {"account": "default", "mailing": mid})]
        accounts.stop(store, OPERATOR, "default", "wrong list")
        assert woken() == [Wakeup("stop", {"account": "default"})]
        accounts.resume(store, OPERATOR, "default")
        assert woken() == [Wakeup("resume", {"account": "default"})]
        mailings.pause(store, OPERATOR, mid)
        assert woken() == [Wakeup("pause", {"account": "default", "mailing": mid})]
        mailings.unpause(store, OPERATOR, mid)
        assert woken() == [Wakeup("resume", {"account": "default", "mailing": mid})]
        mailings.delete_mailing(store, OPERATOR, mid)
        assert woken() == [Wakeup("delete", {"account": "default", "mailing": mid})]
        # An action that changes neither the stop state nor the work wakes no one.
        suppressions.add(store, OPERATOR, "c@example.net")
        assert listener.wait(0.3) == []
    finally:
        listener.close()
        store.close()
