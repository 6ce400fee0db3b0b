"""The audit log: every operator action, with time, actor and SSH client, newest first."""

from __future__ import annotations

from storehelp import ALICE, SENDER, recipients

from mailconsole.store import Actor, accounts, audit, mailings, queue, revisions
from mailconsole.store.importer import create_mailing

DAY = 86400.0


def test_every_operator_action_is_logged_with_who_and_when(store, clock, make_mailing):
    mid = make_mailing(3)  # create
    steps = [
        ("stop", lambda: accounts.stop(store, ALICE, reason="typo in subject")),
        ("template", lambda: revisions.save_revision(store, ALICE, mid, subject="Fixed {{ name }}")),
        ("resume", lambda: accounts.resume(store, ALICE)),
        ("pause", lambda: mailings.pause(store, ALICE, mid)),
        ("unpause", lambda: mailings.unpause(store, ALICE, mid)),
    ]
    for _action, step in steps:
        clock.advance(1)
        step()
    accounts.stop(store, ALICE)
    clock.advance(8 * DAY)
    accounts.resume(store, ALICE)
    mailings.requeue_suspended(store, ALICE, mid)
    mailings.delete_mailing(store, ALICE, mid)

    entries = audit.entries(store, limit=100)
    assert [e.action for e in reversed(entries)] == [
        "create", "stop", "template", "resume", "pause", "unpause", "stop", "resume", "requeue", "delete",
    ]
    assert all((e.actor, e.ssh_client, e.account) == ("alice", "192.0.2.7", "default") for e in entries)
    assert [e.at for e in reversed(entries)][:6] == [clock.now - 8 * DAY - 5 + i for i in range(6)]
    assert all(e.mailing_id == mid for e in entries if e.action not in ("stop", "resume"))
    assert entries[-2].details == {"generation": 1, "reason": "typo in subject"}
    assert entries[0].details["dropped"] == 3 and entries[0].details["sent"] == 0


def test_limit_and_account_filter(store, make_mailing):
    accounts.ensure_account(store, "other")
    accounts.stop(store, ALICE)
    accounts.stop(store, Actor("bob"), account="other")
    accounts.resume(store, ALICE)
    assert [e.action for e in audit.entries(store, limit=2)] == ["resume", "stop"]
    other = audit.entries(store, account="other")
    assert [(e.action, e.actor, e.ssh_client) for e in other] == [("stop", "bob", None)]


def test_stopping_one_account_leaves_the_others_sending(store, csv_file):
    accounts.ensure_account(store, "other")
    create_mailing(store, ALICE, name="a", sender=SENDER, subject="Hi", text_body="x", html_body=None,
                   recipients=csv_file(recipients(2)))
    create_mailing(store, ALICE, name="b", sender=SENDER, subject="Hi", text_body="x", html_body=None,
                   recipients=csv_file(recipients(3)), account="other")
    accounts.stop(store, ALICE, account="other")
    assert len(queue.claim(store, "e1", 10, 60)) == 2  # only the default account's
