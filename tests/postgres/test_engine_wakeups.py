"""An engine on a PostgreSQL store listens: new work is claimed at once, not at its next poll."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import trio

from mailconsole.engine import Engine, EngineConfig
from mailconsole.store import Actor, Store, mailings
from mailconsole.store.importer import create_mailing

OPERATOR = Actor("operator", "192.0.2.1")
# Polls far longer than the test may take: only a wake-up can make the engine claim in time.
SLOW_POLLS = dict(idle_claim_interval=600.0, maintenance_interval=600.0, poll_interval=1.0,
                  heartbeat_interval=0.2, shutdown_grace=2.0)


async def test_a_requeue_wakes_an_idle_engine(pg_server, migrated_url: str, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["email"], ["a@example.net"], ["b@example.net"]])
    owner = Store(migrated_url)
    mid = create_mailing(owner, OPERATOR, name="n", sender="news@shop.example", subject="s",
                         text_body="t", html_body=None, recipients=path).mailing_id
    # One message failed (to be requeued), one due in an hour: the mailing stays sending,
    # so nothing but the requeue's wake-up tells an idle engine there is work again.
    with pg_server.connect(migrated_url.rsplit("/", 1)[1]) as conn:
        conn.execute("UPDATE messages SET state = 'failed', fail_kind = 'smtp' WHERE email = 'a@example.net'")
        conn.execute("UPDATE messages SET due_at = %s WHERE email = 'b@example.net'", [time.time() + 3600])
        conn.execute("UPDATE mailings SET status = 'sending', queued = 1, failed = 1 WHERE id = %s", [mid])
    store = Store(migrated_url, create=False)
    engine = Engine(store, EngineConfig(transport="null:", **SLOW_POLLS))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            await trio.sleep(2)  # its first claim found nothing: it idles for SLOW_POLLS now
            assert (await trio.to_thread.run_sync(mailings.get_mailing, owner, mid)).sent == 0
            await trio.to_thread.run_sync(mailings.requeue_failed, owner, OPERATOR, mid)
            with trio.fail_after(120):  # far less than the idle poll of 600 s
                while (await trio.to_thread.run_sync(mailings.get_mailing, owner, mid)).sent < 1:
                    await trio.sleep(0.05)
            engine.request_stop()
    finally:
        store.close()
        owner.close()
