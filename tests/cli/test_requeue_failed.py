"""A template that failed every message: shown as failed, corrected, its messages requeued."""

from __future__ import annotations

import json

from sqlalchemy import select

from mailconsole.engine.message import CompiledRevision, MergeError, RevisionData
from mailconsole.store import Store, queue, revisions
from mailconsole.store.schema import messages


def _engine_pass(db: str) -> None:
    """What an engine does with the claimed messages: build each, record the failures."""
    store = Store(db)
    try:
        outcomes = []
        for c in queue.claim(store, "engine-1", 100, 60):
            row = queue.newest_revisions(store, [c.mailing_id])[c.mailing_id]
            try:
                CompiledRevision(c.mailing_id, RevisionData(*row)).build(c.id, c.email, c.fields)
                outcomes.append(queue.Outcome(c.id, c.mailing_id, "sent", row[0]))
            except MergeError as exc:
                outcomes.append(queue.Outcome(c.id, c.mailing_id, "failed", row[0], error=str(exc), fail_kind=exc.kind))
        queue.record(store, "engine-1", outcomes)
    finally:
        store.close()


def _rows(db: str, mid: int) -> list[tuple]:
    store = Store(db)
    try:
        with store.read() as conn:
            return conn.execute(
                select(messages.c.state, messages.c.fail_kind, messages.c.attempts, messages.c.last_error)
                .where(messages.c.mailing_id == mid).order_by(messages.c.id)
            ).all()
    finally:
        store.close()


def test_failed_messages_go_back_after_a_correction(cli, mailing, files, db):
    cli("init")
    mid = mailing(4)
    store = Store(db)
    with store.write() as conn:  # as an older release could have saved it: it fails every message
        revisions.add(conn, mid, "Hi {{ first_name }}", "Hello {{ 1/0 }}\n", None, store.now(), "old-release")
    store.close()
    _engine_pass(db)

    assert {(state, kind) for state, kind, _, _ in _rows(db, mid)} == {("failed", "template")}
    shown = json.loads(cli("mailings", "--json").out)
    assert [(m["id"], m["status"], m["sent"], m["failed"]) for m in shown] == [(mid, "failed", 0, 4)]
    assert json.loads(cli("status", "--json").out)["mailings"][0]["status"] == "failed"
    assert " failed " in cli("mailings").out

    assert cli("requeue", str(mid)).code == 1  # plain requeue is for suspended messages, as before
    fixed = files("fixed.txt", "Hello {{ first_name }}\n")
    assert cli("template", "set", str(mid), "--body-file", str(fixed)).code == 0
    r = cli("requeue", str(mid), "--failed")
    assert r.code == 0, r.err
    assert "requeued 4 failed message(s) of mailing" in r.out
    assert _rows(db, mid) == [("queued", None, 0, None)] * 4
    assert json.loads(cli("mailings", "--json").out)[0]["status"] == "sending"

    _engine_pass(db)  # sent with the corrected revision now
    done = json.loads(cli("mailings", "--json").out)[0]
    assert (done["status"], done["sent"], done["failed"]) == ("sent", 4, 0)
    again = cli("requeue", str(mid), "--failed")
    assert again.code == 1 and "has no failed messages to requeue" in again.err
    audit = json.loads(cli("audit", "--json").out)
    assert any(e["action"] == "requeue" and e["details"].get("requeued") == 4 for e in audit)


def test_requeue_failed_refused_for_a_deleted_mailing(cli, mailing):
    cli("init")
    mid = mailing(2)
    assert cli("delete", str(mid), "--yes").code == 0
    r = cli("requeue", str(mid), "--failed")
    assert r.code == 1 and "was deleted" in r.err and len(r.err.strip().splitlines()) == 1


def test_help_names_the_failed_option(cli_process):
    r = cli_process("requeue", "--help")
    assert r.code == 0 and "--failed" in r.out and "failed messages" in r.out
