"""A suppression added while a mailing sends takes effect at the next claim (real engine, real SMTP)."""

from __future__ import annotations

import trio

from mailconsole.store import suppressions

from .conftest import OPERATOR, add_mailing, fast_config, message_rows, running, wait_done, wait_for


async def test_an_address_suppressed_mid_send_receives_nothing_after_the_addition(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 60)
    late = [f"user{i}@example.net" for i in range(50, 60)]
    # Rate-limited, the engine holds about a second of messages: the last ten are still queued
    # when the suppression commits (checked below), so nothing may be sent to them.
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1, rate=25, batch=5)
    async with running(store, cfg):
        await wait_for(lambda: len(handler.messages) >= 5)
        for address in late:
            await trio.to_thread.run_sync(suppressions.add, store, OPERATOR, address.replace("example.net", "EXAMPLE.net"),
                                          "unsubscribed")
        rows = await trio.to_thread.run_sync(message_rows, store, mid)
        assert {rows[a][0] for a in late} <= {"queued", "suppressed"}, "the test needs them not yet claimed"
        m = await wait_done(store, mid, timeout=30)
    got = handler.by_rcpt()
    assert not set(late) & set(got)
    assert sorted(got) == sorted(f"user{i}@example.net" for i in range(50)) and all(len(v) == 1 for v in got.values())
    assert (m.sent, m.suppressed, m.queued, m.in_flight, m.status) == (50, 10, 0, 0, "sent")
    rows = message_rows(store, mid)
    assert all(rows[a][0] == "suppressed" and rows[a][1] == 0 for a in late)  # never attempted
