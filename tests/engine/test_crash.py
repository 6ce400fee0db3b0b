"""An engine that crashes still records what the server accepted, and `serve` says why in one line.

The fault is real: an SQLite trigger makes every claim after the first recorded
send fail inside the store (an error the engine does not expect), while the
messages claimed before it are being delivered and their results wait to be
written. Recorded as they are, none of them is sent a second time.
"""

from __future__ import annotations

import pytest
import trio
from sqlalchemy import text

from mailconsole.engine import Engine
from mailconsole.store.mailings import get_mailing

from .conftest import add_mailing, fast_config, message_rows, serve

# A claim after the first recorded sent message fails, in each backend's trigger language.
FAULT = {
    "sqlite": [
        "CREATE TRIGGER injected_fault BEFORE UPDATE OF state ON messages "
        "WHEN NEW.state = 'claimed' AND (SELECT count(*) FROM messages WHERE state = 'sent') > 0 "
        "BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.state = 'claimed' AND (SELECT count(*) FROM messages WHERE state = 'sent') > 0 THEN "
        "RAISE EXCEPTION 'injected fault' USING ERRCODE = 'integrity_constraint_violation'; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER injected_fault BEFORE UPDATE OF state ON messages "
        "FOR EACH ROW EXECUTE FUNCTION injected_fault()",
    ],
}
WORKERS = 2


def fault_after_first_record(store) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        for statement in FAULT[store.backend.name]:
            conn.execute(text(statement))


def check_nothing_accepted_was_requeued(store, mailing_id: int, received: dict[str, list]) -> None:  # type: ignore[no-untyped-def]
    rows = message_rows(store, mailing_id)  # email -> (state, attempts, last_error, recovered)
    assert "claimed" not in {r[0] for r in rows.values()}
    requeued = [e for e in received if rows[e][0] != "sent" and rows[e][3] == 0]
    assert not requeued, f"{len(requeued)} accepted messages went back to the queue as never sent"
    # At most one transaction per worker can be cut between its dot and the reply.
    unknown = [e for e in received if rows[e][0] != "sent"]
    assert len(unknown) <= WORKERS, unknown
    m = get_mailing(store, mailing_id)
    assert m.in_flight == 0 and m.sent == sum(1 for r in rows.values() if r[0] == "sent")
    assert m.sent > 20  # more than the one batch recorded before the fault


async def test_a_crashing_engine_records_every_accepted_message(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 200)
    fault_after_first_record(store)
    # Results wait half a second before they are written: plenty are in hand at the crash.
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=WORKERS, batch=10, result_flush=0.5)
    engine = Engine(store, cfg)
    with pytest.raises(BaseExceptionGroup) as caught, trio.fail_after(20):
        await engine.run()
    assert caught.group_contains(Exception, match="injected fault")
    check_nothing_accepted_was_requeued(store, mid, handler.by_rcpt())


def test_serve_says_why_it_crashed_in_one_line(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 200)
    fault_after_first_record(store)
    config = tmp_path / "engine.toml"
    config.write_text(f"[engine]\nworkers = {WORKERS}\nbatch = 10\nresult_flush = 0.5\n", encoding="utf-8")
    proc = serve(store.url, ctl.port, config)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailconsole: error: engine "), err
    assert "crashed: IntegrityError" in lines[0] and "injected fault" in lines[0]
    check_nothing_accepted_was_requeued(store, mid, handler.by_rcpt())
    # With --verbose, the log has the whole story.
    proc = serve(store.url, ctl.port, config, "--verbose")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("mailconsole: error:")
