"""Delivery over real SMTP (aiosmtpd on loopback) and through maildir/null transports."""

from __future__ import annotations

import mailbox

import trio

from mailconsole.store.engines import list_engines

from .conftest import SENDER, add_mailing, fast_config, parse, running, wait_done, wait_for


async def test_delivers_every_recipient_personalised(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 25)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=4)):
        m = await wait_done(store, mid)
    assert (m.sent, m.failed, m.status) == (25, 0, "sent")
    got = handler.by_rcpt()
    assert sorted(got) == sorted(f"user{i}@example.net" for i in range(25))
    for i in range(25):
        [received] = got[f"user{i}@example.net"]
        assert received.mail_from == SENDER
        msg = parse(received.data)
        assert msg["Subject"] == f"Hello User {i}"
        assert msg.get_content() == f"Dear User {i},\nyour code is C{i}.\n"
        assert msg["Message-ID"].startswith("<m")


async def test_maildir_transport_writes_files(store, tmp_path):
    box = tmp_path / "box"
    mid = add_mailing(store, tmp_path, 5)
    async with running(store, fast_config(transport=f"maildir:{box}", workers=2)):
        await wait_done(store, mid)
    messages = list(mailbox.Maildir(box))
    assert sorted(m["To"] for m in messages) == sorted(f"user{i}@example.net" for i in range(5))


async def test_null_transport_counts_and_heartbeats(store, tmp_path):
    mid = add_mailing(store, tmp_path, 300)
    async with running(store, fast_config(workers=8)) as engine:
        m = await wait_done(store, mid)
        [info] = list_engines(store)
        assert info.id == engine.engine_id and info.transport == "null:" and info.workers == 8
    assert m.sent == 300
    [info] = list_engines(store, include_gone=True)
    assert info.state == "stopped" and info.in_flight == 0


async def test_leases_are_renewed_while_messages_wait(store, tmp_path):
    """Held longer than a lease (slow rate), nothing expires: the heartbeat renews the claims."""
    box = tmp_path / "box"
    mid = add_mailing(store, tmp_path, 30)
    cfg = fast_config(transport=f"maildir:{box}", workers=2, rate=20, lease_seconds=0.6)
    async with running(store, cfg) as engine:
        await wait_for(lambda: engine.held > 5)
        m = await wait_done(store, mid)
        [info] = list_engines(store)
        assert info.sent_rate > 0
    assert (m.sent, m.recovered) == (30, 0)
    assert len(list(mailbox.Maildir(box))) == 30


async def test_rate_cap_keeps_about_a_second_in_flight(store, tmp_path):
    """With a rate cap the engine claims about a second's worth, not a batch per worker."""
    add_mailing(store, tmp_path, 200)
    async with running(store, fast_config(workers=16, batch=100, rate=40)) as engine:
        await wait_for(lambda: engine.sent_total > 10)
        held = []
        for _ in range(50):
            held.append(engine.held)
            await trio.sleep(0.02)
    assert 0 < max(held) <= 40
