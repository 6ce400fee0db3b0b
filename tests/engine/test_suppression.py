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


async def test_a_message_claimed_before_its_suppression_is_not_sent(store, tmp_path, smtpd_factory):
    """The claim checked the suppressions before this one existed: the final-dot gate checks again."""
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 60)
    # Rate-limited to 10/s, the engine holds 25 claimed messages, sent one by one: the
    # last five of them leave ~2 s after the third, time enough to suppress them on a busy machine.
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1, rate=10, batch=25)
    async with running(store, cfg):
        await wait_for(lambda: len(handler.messages) >= 3)
        rows = await trio.to_thread.run_sync(message_rows, store, mid)
        # The last five in the order they are sent (queued order; the rows come in none).
        claimed = sorted((a for a, r in rows.items() if r[0] == "claimed"), key=lambda a: int(a[4:a.index("@")]))[-5:]
        assert len(claimed) == 5, "the test needs messages claimed and not yet sent"
        for address in claimed:
            await trio.to_thread.run_sync(suppressions.add, store, OPERATOR, address, "unsubscribed")
        rows = await trio.to_thread.run_sync(message_rows, store, mid)
        assert all(rows[a][0] == "claimed" for a in claimed), "they must still be claimed when suppressed"
        m = await wait_done(store, mid, timeout=30)
    got = handler.by_rcpt()
    assert not set(claimed) & set(got)
    assert len(got) == 55 and all(len(v) == 1 for v in got.values())
    assert (m.sent, m.suppressed, m.queued, m.in_flight, m.status) == (55, 5, 0, 0, "sent")
    rows = message_rows(store, mid)
    assert all(rows[a][0] == "suppressed" and rows[a][1] == 0 for a in claimed)  # never counted as an attempt



def test_the_mark_travels_with_each_claim_and_the_gate_read(store, tmp_path):
    from mailconsole.store.gate_io import ControlReader
    from mailconsole.store.queue import claim

    mid = add_mailing(store, tmp_path, 4)
    reader = ControlReader(store)
    try:
        before = reader.read()
        first = claim(store, "engine-a", 2, lease_seconds=30)
        suppressions.add(store, OPERATOR, "user3@example.net", "bounced")
        after = reader.read()
        second = claim(store, "engine-a", 2, lease_seconds=30)
        assert after.suppressions == before.suppressions + 1
        assert {c.suppressions_seen for c in first} == {before.suppressions}
        assert [c.email for c in second] == ["user2@example.net"]  # user3 left the queue in the claim
        assert {c.suppressions_seen for c in second} == {after.suppressions}
        account = after.account_of(mid)
        assert account is not None
        assert reader.suppressed(account, "user3@example.net") and not reader.suppressed(account, "user2@example.net")
    finally:
        reader.close()
