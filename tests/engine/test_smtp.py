"""The SMTP client against real servers: TLS, AUTH, replies and broken connections."""

from __future__ import annotations

import re
import ssl

import pytest
import trio
import trustme
from sqlalchemy import select
from store_backend import ON_POSTGRESQL

from mailconsole.engine.transports import make_transport
from mailconsole.store import accounts, schema
from mailconsole.store.mailings import get_mailing
from mailconsole.store.engines import list_engines

from .conftest import (
    RawSMTPServer, RecordingHandler, accept_login, add_mailing, fast_config, mailing, message_rows, running,
    wait_done, wait_for,
)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls(ca):
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_starttls_required(store, tmp_path, smtpd_factory, tls, ca):
    server_ctx, client_ctx = tls
    ctl, handler = smtpd_factory(tls_context=server_ctx, require_starttls=True)
    mid = add_mailing(store, tmp_path, 5)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))  # the operator's way: a CA file named in the URL
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}?starttls=required&cafile={ca_file}", workers=2)
    async with running(store, cfg):
        m = await wait_done(store, mid)
    assert m.sent == 5 and len(handler.messages) == 5


def _tries(note: str | None) -> int:
    """How many connection attempts an engine's note says failed ("tried 3x")."""
    found = re.search(r"tried (\d+)x", note or "")
    return int(found.group(1)) if found else 0


async def _held_while_unusable(store, engine, mid, words: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """The server can't be used: the engine says why, and the message is kept, not failed."""
    await wait_for(lambda: engine.note and all(w in engine.note for w in words), what=f"note with {words}")
    await wait_for(lambda: _tries(engine.note) >= 2, what="a second try")  # it keeps trying
    m = await mailing(store, mid)
    assert m.failed == 0 and m.sent == 0 and m.queued + m.in_flight == 1


async def test_starttls_required_but_not_offered_is_not_sent(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 1)
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}?starttls=required", workers=1, max_attempts=1)
    async with running(store, cfg) as engine:
        await _held_while_unusable(store, engine, mid, ("STARTTLS", "required", "messages are kept"))
    assert not handler.messages
    assert message_rows(store, mid)["user0@example.net"][:2] == ("queued", 0)  # no attempt used up


async def test_implicit_tls(store, tmp_path, smtpd_factory, tls):
    server_ctx, client_ctx = tls
    ctl, handler = smtpd_factory(ssl_context=server_ctx)
    mid = add_mailing(store, tmp_path, 5)
    cfg = fast_config(transport=f"smtps://127.0.0.1:{ctl.port}", workers=2)
    async with running(store, cfg, transport=make_transport(cfg, ssl_context=client_ctx)):
        m = await wait_done(store, mid)
    assert m.sent == 5 and len(handler.messages) == 5


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_auth_with_password_from_config_never_stored(store, tmp_path, smtpd_factory, mechanism):
    other = {"PLAIN": ["LOGIN"], "LOGIN": ["PLAIN"]}[mechanism]
    ctl, handler = smtpd_factory(
        authenticator=accept_login("mailer", "s3cret-pw"), auth_required=True, auth_require_tls=False,
        auth_exclude_mechanism=other,
    )
    mid = add_mailing(store, tmp_path, 3)
    cfg = fast_config(transport=f"smtp://mailer@127.0.0.1:{ctl.port}?starttls=off", password="s3cret-pw", workers=1)
    assert "s3cret" not in repr(cfg)
    async with running(store, cfg):
        m = await wait_done(store, mid)
        [info] = list_engines(store)
    assert m.sent == 3
    assert "s3cret" not in info.transport
    with store.read() as conn:  # in no row of any table
        rows = [row for table in schema.metadata.sorted_tables for row in conn.execute(select(table))]
    assert rows and "s3cret-pw" not in repr(rows)
    if not ON_POSTGRESQL:  # nor anywhere in the file, freed pages and the WAL included
        store_bytes = (tmp_path / "store.db").read_bytes() + (tmp_path / "store.db-wal").read_bytes()
        assert b"s3cret-pw" not in store_bytes


async def test_refused_login_keeps_the_messages_and_says_so(store, tmp_path, smtpd_factory):
    """Wrong credentials are the operator's to fix: shown, never charged to the recipients."""
    ctl, handler = smtpd_factory(authenticator=accept_login("mailer", "right-pw"), auth_required=True, auth_require_tls=False)
    mid = add_mailing(store, tmp_path, 1)
    cfg = fast_config(transport=f"smtp://mailer@127.0.0.1:{ctl.port}?starttls=off", password="wrong-pw", workers=1)
    async with running(store, cfg) as engine:
        await _held_while_unusable(store, engine, mid, ("AUTH", "535"))
        assert "wrong-pw" not in engine.note
    assert not handler.messages


async def test_password_in_url_is_masked(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(authenticator=accept_login("mailer", "url-pw-123"), auth_required=True, auth_require_tls=False)
    mid = add_mailing(store, tmp_path, 1)
    cfg = fast_config(transport=f"smtp://mailer:url-pw-123@127.0.0.1:{ctl.port}", workers=1)
    assert "url-pw-123" not in repr(cfg)
    async with running(store, cfg):
        m = await wait_done(store, mid)
        [info] = list_engines(store)
    assert m.sent == 1
    assert info.transport == f"smtp://mailer:***@127.0.0.1:{ctl.port}"


async def test_4xx_is_retried_then_sent(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(RecordingHandler(data_replies=["451 4.3.0 try again later"]))
    mid = add_mailing(store, tmp_path, 1)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
        m = await wait_done(store, mid)
    assert m.sent == 1 and len(handler.messages) == 1
    [(state, attempts, error, _)] = message_rows(store, mid).values()
    assert (state, attempts, error) == ("sent", 2, None)


async def test_4xx_until_max_attempts_then_failed(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(RecordingHandler(data_replies=["452 4.2.2 mailbox full"] * 10))
    mid = add_mailing(store, tmp_path, 1)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1, max_attempts=3)):
        m = await wait_done(store, mid)
    assert m.failed == 1
    [(state, attempts, error, _)] = message_rows(store, mid).values()
    assert state == "failed" and attempts == 3 and "452 4.2.2 mailbox full" in error and "3 attempts" in error


async def test_5xx_fails_with_reply_text(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(RecordingHandler(data_replies=["554 5.7.1 looks like spam"]))
    mid = add_mailing(store, tmp_path, 2)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
        m = await wait_done(store, mid)
    assert (m.sent, m.failed) == (1, 1)
    errors = [row[2] for row in message_rows(store, mid).values() if row[0] == "failed"]
    assert errors == ["end of data: 554 5.7.1 looks like spam"]


async def test_rejected_recipient_fails_alone(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(RecordingHandler(reject_rcpt={"user1@example.net"}))
    mid = add_mailing(store, tmp_path, 4)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
        m = await wait_done(store, mid)
    assert (m.sent, m.failed) == (3, 1)
    rows = message_rows(store, mid)
    assert rows["user1@example.net"][0] == "failed" and "550 5.1.1" in rows["user1@example.net"][2]
    assert sorted(handler.by_rcpt()) == ["user0@example.net", "user2@example.net", "user3@example.net"]


async def test_merge_error_fails_one_message_only(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory()
    rows = [{"email": f"u{i}@example.net", "name": "Eve\u2028Bcc: x@evil.example" if i == 1 else f"U{i}", "code": "c"} for i in range(3)]
    mid = add_mailing(store, tmp_path, rows=rows, subject="Hi {{ code }}", text="{{ name }}")
    # The importer refuses line breaks in fields used by the subject, so the subject uses
    # `code`; this row's name goes to the body and is fine. Now break a header at send time:
    with store.write() as conn:
        from sqlalchemy import update

        from mailconsole.store.schema import messages
        conn.execute(update(messages).where(messages.c.email == "u1@example.net").values(fields='{"name": "x", "code": "a\\nBcc: x@evil.example"}'))
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=2)):
        m = await wait_done(store, mid)
    assert (m.sent, m.failed) == (2, 1)
    assert "line break" in message_rows(store, mid)["u1@example.net"][2]


async def _send_through(server: RawSMTPServer, store, tmp_path, nursery, n: int):  # type: ignore[no-untyped-def]
    """A mailing of n through one connection to the scripted server, until nothing is left to send."""
    port = await nursery.start(server.serve)
    mid = add_mailing(store, tmp_path, n)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{port}", workers=1)):
        return mid, await wait_done(store, mid)


async def test_server_closing_mid_data_is_retried(store, tmp_path, nursery):
    server = RawSMTPServer()
    server.cut_during_data = 2
    mid, m = await _send_through(server, store, tmp_path, nursery, 3)
    assert m.sent == 3 and server.aborted >= 2
    assert sorted(r for r, _, _ in server.accepted) == [f"user{i}@example.net" for i in range(3)]
    assert max(row[1] for row in message_rows(store, mid).values()) >= 2  # someone needed a retry


async def test_unreachable_server_keeps_the_messages_until_it_answers(store, tmp_path, smtpd_factory):
    """A relay outage is not the recipients' fault: nothing fails, everything goes once it is back."""
    from .conftest import free_port

    port = free_port()
    mid = add_mailing(store, tmp_path, 3)
    cfg = fast_config(transport=f"smtp://127.0.0.1:{port}", workers=2, max_attempts=1)
    async with running(store, cfg) as engine:
        await _held_while_unusable_many(store, engine, mid)
        _, handler = smtpd_factory(port=port)  # the server comes back
        m = await wait_done(store, mid)
        assert engine.note is None  # the problem is no longer shown
    assert (m.sent, m.failed) == (3, 0)
    assert sorted(r for env in handler.messages for r in env.rcpt_tos) == [f"user{i}@example.net" for i in range(3)]
    assert {row[1] for row in message_rows(store, mid).values()} == {1}  # one attempt each


async def test_a_stop_during_an_outage_returns_everything_at_once(store, tmp_path, monkeypatch):
    """Senders waiting out the back-off do not hold a stop up: the queue is whole again at once."""
    from functools import partial

    from mailconsole.engine import outage, runner

    from .conftest import OPERATOR, free_port

    # A back-off of 30 s after the first failed try: a stop that waited for it would
    # take that long, where senders that look every CHECK_EVERY (0.25 s) let go at once.
    monkeypatch.setattr(runner, "Outage", partial(outage.Outage, first=30.0))
    mid = add_mailing(store, tmp_path, 50)
    cfg = fast_config(transport=f"smtp://127.0.0.1:{free_port()}", workers=4)
    async with running(store, cfg) as engine:
        await wait_for(lambda: "cannot connect" in (engine.note or "") and "next try in" in engine.note, what="a failed try")
        m = await mailing(store, mid)
        assert m.failed == 0 and m.sent == 0
        assert m.in_flight > 0  # held while the server is away
        accounts.stop(store, OPERATOR, reason="outage and a wrong list")
        state = accounts.state(store)
        with trio.fail_after(10):  # well below the 24-36 s left of the back-off
            await wait_for(lambda: get_in_flight(store, mid) == 0)
            await wait_for(lambda: list_engines(store)[0].acknowledged_generation(state.id) == state.generation)
    m = await mailing(store, mid)
    assert (m.queued, m.sent, m.failed) == (50, 0, 0)
    assert {row[1] for row in message_rows(store, mid).values()} == {0}  # no attempt used up


def get_in_flight(store, mid) -> int:  # type: ignore[no-untyped-def]
    return get_mailing(store, mid).in_flight


async def _held_while_unusable_many(store, engine, mid):  # type: ignore[no-untyped-def]
    await wait_for(lambda: "cannot connect" in (engine.note or "") and _tries(engine.note) >= 2, what="two failed tries")
    m = await mailing(store, mid)
    assert m.failed == 0 and m.sent == 0


async def test_pipelined_envelopes_behind_the_dot(store, tmp_path, nursery):
    """With PIPELINING the next envelope rides behind each dot; a rejected one fails alone."""
    server = RawSMTPServer()
    server.reject_rcpt = {"user5@example.net", "user6@example.net"}
    mid, m = await _send_through(server, store, tmp_path, nursery, 30)
    assert (m.sent, m.failed) == (28, 2)
    accepted = sorted(r for r, _, _ in server.accepted)
    assert accepted == sorted(f"user{i}@example.net" for i in range(30) if i not in (5, 6))
    assert server.commands.count(b"RSET") >= 1  # the half-open transaction was reset
    rows = message_rows(store, mid)
    assert "550 5.1.1" in rows["user5@example.net"][2] and "550 5.1.1" in rows["user6@example.net"][2]


async def test_connection_lost_after_the_dot_is_counted_as_possibly_delivered(store, tmp_path, nursery):
    """No reply to the dot: the server may have the message, so the retry is a counted duplicate."""
    server = RawSMTPServer()
    server.hang_up_after_dot = 1
    mid, m = await _send_through(server, store, tmp_path, nursery, 1)
    assert m.sent == 1 and m.recovered == 1
    [(state, attempts, _, recovered)] = message_rows(store, mid).values()
    assert (state, attempts, recovered) == ("sent", 2, 1)
    assert len(server.accepted) == 2  # delivered twice, and the store says it may have been


async def test_untrusted_certificate_is_refused(store, tmp_path, smtpd_factory, tls):
    server_ctx, _ = tls
    ctl, handler = smtpd_factory(tls_context=server_ctx, require_starttls=True)
    mid = add_mailing(store, tmp_path, 1)
    cfg = fast_config(transport=f"smtp://127.0.0.1:{ctl.port}?starttls=required", workers=1, max_attempts=1)
    async with running(store, cfg) as engine:
        await _held_while_unusable(store, engine, mid, ("TLS", "certificate"))
    assert not handler.messages


