"""Rows the engine cannot send fail alone; everything else is delivered and recorded once.

The store may hold what `create` would refuse today: rows of an older release, or
written by hand. Such rows are written here straight into the tables.
"""

from __future__ import annotations

import time

import trio
from sqlalchemy import select, update

from mailconsole.store.engines import list_engines
from mailconsole.store.mailings import get_mailing
from mailconsole.store.schema import mailings, messages

from .conftest import add_mailing, fast_config, running, serve, wait, wait_done


def set_mailing(store, mailing_id: int, **values: object) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        conn.execute(update(mailings).where(mailings.c.id == mailing_id).values(**values))


def set_recipient(store, mailing_id: int, old: str, new: str) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        conn.execute(update(messages).where(messages.c.mailing_id == mailing_id, messages.c.email == old)
                     .values(email=new))


def outcomes(store, mailing_id: int) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """email -> (state, fail_kind, last_error)."""
    with store.read() as conn:
        rows = conn.execute(select(messages.c.email, messages.c.state, messages.c.fail_kind, messages.c.last_error)
                            .where(messages.c.mailing_id == mailing_id)).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def bad_store(store, tmp_path) -> tuple[int, list[int], dict[str, str]]:  # type: ignore[no-untyped-def]
    """A good mailing with two unusable recipients, and four mailings whose every message is unusable.

    Returns (good mailing, bad mailings, unusable recipient of the good mailing -> what the reason names).
    """
    good = add_mailing(store, tmp_path, 20, name="good")
    bad_rcpt = {"müller@example.net": "not plain ASCII", "x@example.net\r\nRCPT TO:<evil@example.org>": "control character"}
    for i, address in enumerate(bad_rcpt):
        set_recipient(store, good, f"user{i}@example.net", address)
    bad = []
    for name, values in [
        ("non-ASCII sender", {"sender": "s@bücher.de"}),
        ("header in sender", {"sender": "Shop\r\nBcc: everyone@example.org <news@shop.example>"}),
        ("non-ASCII List-Unsubscribe", {"list_unsubscribe": "<https://bücher.de/u>"}),
        ("header in List-Unsubscribe", {"list_unsubscribe": "<mailto:u@shop.example>\r\nBcc: everyone@example.org"}),
    ]:
        mid = add_mailing(store, tmp_path, 5, name=name)
        set_mailing(store, mid, **values)
        bad.append(mid)
    return good, bad, bad_rcpt


async def test_unsendable_rows_fail_alone_as_address_failures(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    good, bad, bad_rcpt = bad_store(store, tmp_path)
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=4)
    async with running(store, cfg):
        for mid in [good, *bad]:
            await wait_done(store, mid)
    # Every usable message went out exactly once, and is recorded as sent.
    got = handler.by_rcpt()
    rows = outcomes(store, good)
    usable = {e for e in rows if e not in bad_rcpt}
    assert sorted(got) == sorted(usable) and all(len(v) == 1 for v in got.values())
    assert {rows[e][0] for e in usable} == {"sent"}
    for address, named in bad_rcpt.items():
        state, kind, error = rows[address]
        assert (state, kind) == ("failed", "address") and named in error, rows[address]
    assert "evil@example.org" not in got and not any(b"Bcc:" in m.data for m in handler.messages)
    for mid in bad:
        rows = outcomes(store, mid)
        assert {(state, kind) for state, kind, _ in rows.values()} == {("failed", "address")}, rows
        m = get_mailing(store, mid)
        assert (m.sent, m.failed, m.queued, m.in_flight) == (0, 5, 0, 0)
    reasons = {mid: next(iter(outcomes(store, mid).values()))[2] for mid in bad}
    assert "sender address 's@bücher.de' is not plain ASCII" in reasons[bad[0]]
    assert "line break" in reasons[bad[1]]
    assert "List-Unsubscribe" in reasons[bad[2]] and "List-Unsubscribe" in reasons[bad[3]]
    # A second engine finds nothing left to send.
    before = len(handler.messages)
    async with running(store, cfg):
        await trio.sleep(0.5)
    assert len(handler.messages) == before


def test_serve_on_such_a_store_delivers_the_rest_once_and_exits_cleanly(store, tmp_path, smtpd_factory):
    """The reported case: every `serve` crashed on start, and each start sent the delivered messages again."""
    ctl, handler = smtpd_factory()
    good, bad, bad_rcpt = bad_store(store, tmp_path)
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\nworkers = 4\nidle_claim_interval = 0.02\nheartbeat_interval = 0.2\n", encoding="utf-8")
    db = store.url
    for start in range(2):
        proc = serve(db, ctl.port, config)
        try:
            wait(lambda: any(e.pid == proc.pid for e in list_engines(store)), 30)
            wait(lambda: all(get_mailing(store, mid).queued == get_mailing(store, mid).in_flight == 0
                             for mid in [good, *bad]), 30)
            time.sleep(0.5)  # the second start: time to send anything it would send again
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "ExceptionGroup" not in err
    counts = {r: len(ms) for r, ms in handler.by_rcpt().items()}
    assert len(counts) == 20 - len(bad_rcpt) and set(counts.values()) == {1}
    assert get_mailing(store, good).sent == 20 - len(bad_rcpt)
    for mid in bad:
        assert {kind for _, kind, _ in outcomes(store, mid).values()} == {"address"}
