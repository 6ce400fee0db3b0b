"""Preview and test send: the engine's own message, for one recipient, without touching that recipient.

Real parts: a SQLite store, aiosmtpd on loopback, the engine's SMTP client; what
arrives is parsed with the `email` package.
"""

from __future__ import annotations

import trio
from sqlalchemy import select

from mailconsole.engine.preview import message_parts, render_message
from mailconsole.engine.test_send import TEST_SEND, send_test
from mailconsole.store import accounts, audit, revisions
from mailconsole.store.mailing_detail import last_errors, next_recipient, recipient_by_address
from mailconsole.store.mailings import get_mailing
from mailconsole.store.schema import messages

from .conftest import OPERATOR, SENDER, add_mailing, fast_config, parse, running, wait_done

HTML = "<p>Dear <b>{{ name }}</b>, code {{ code }}</p>\n"
UNSUBSCRIBE = "<https://shop.example/u/{{ code }}>"


def _rows(store, mid: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Everything a send would change on a message row."""
    with store.read() as conn:
        return conn.execute(
            select(messages.c.id, messages.c.state, messages.c.attempts, messages.c.sent_at, messages.c.revision_id,
                   messages.c.last_error, messages.c.lease_owner).where(messages.c.mailing_id == mid)
            .order_by(messages.c.id)
        ).all()


def _smtp(port: int):  # type: ignore[no-untyped-def]
    return fast_config(transport=f"smtp://127.0.0.1:{port}")


def test_test_send_delivers_the_recipients_message_to_the_typed_address(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 3, html=HTML, list_unsubscribe=UNSUBSCRIBE)
    before_rows, before = _rows(store, mid), get_mailing(store, mid)

    result = send_test(store, _smtp(ctl.port), OPERATOR, mid, "qa@ops.example", recipient="user1@example.net")

    assert result.sent and result.reply.startswith("250"), result
    [received] = handler.messages
    assert received.rcpt_tos == ["qa@ops.example"] and received.mail_from == SENDER
    msg = parse(received.data)
    assert msg["To"] == "user1@example.net"  # as rendered for the recipient
    assert msg["Subject"] == "Hello User 1"
    assert msg["List-Unsubscribe"] == "<https://shop.example/u/C1>"
    [message_id] = [r.id for r in before_rows if recipient_by_address(store, mid, "user1@example.net").message_id == r.id]
    assert msg["Message-ID"].startswith(f"<m{message_id}.{mid}.")
    assert msg.get_body(("plain",)).get_content() == "Dear User 1,\nyour code is C1.\n"
    assert msg.get_body(("html",)).get_content() == "<p>Dear <b>User 1</b>, code C1</p>\n"
    # The recipient's row and the mailing's counters are untouched.
    assert _rows(store, mid) == before_rows
    after = get_mailing(store, mid)
    assert (after.queued, after.in_flight, after.sent, after.failed) == (before.queued, before.in_flight, before.sent, before.failed)
    [entry] = [e for e in audit.entries(store) if e.action == TEST_SEND]
    assert entry.actor == OPERATOR.user and entry.mailing_id == mid
    assert entry.details == {"revision": 1, "recipient": "user1@example.net", "to": "qa@ops.example",
                             "reply": result.reply}


def test_test_send_works_while_the_account_is_stopped(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    """Checking a correction before resuming is the point: the stop holds the mailing, not the test copy."""
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 2)
    accounts.stop(store, OPERATOR, reason="wrong text")
    result = send_test(store, _smtp(ctl.port), OPERATOR, mid, "qa@ops.example")
    assert result.sent and len(handler.messages) == 1
    assert parse(handler.messages[0].data)["To"] == next_recipient(store, mid).email


def test_refused_by_the_server_is_reported_and_audited(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    handler.data_replies.append("554 5.7.1 rejected as spam")
    mid = add_mailing(store, tmp_path, 2)
    before = _rows(store, mid)
    result = send_test(store, _smtp(ctl.port), OPERATOR, mid, "qa@ops.example")
    assert not result.sent and "554 5.7.1 rejected as spam" in result.reply
    assert _rows(store, mid) == before
    [entry] = [e for e in audit.entries(store) if e.action == TEST_SEND]
    assert "554" in entry.details["reply"]


def test_null_transport_says_nothing_is_sent(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mid = add_mailing(store, tmp_path, 2)
    result = send_test(store, fast_config(transport="null:"), OPERATOR, mid, "qa@ops.example")
    assert not result.sent and "nothing was sent" in result.reply and result.transport == "null:"


def test_unreachable_server_is_an_answer_not_an_exception(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .conftest import free_port

    mid = add_mailing(store, tmp_path, 2)
    result = send_test(store, _smtp(free_port()), OPERATOR, mid, "qa@ops.example")
    assert not result.sent and result.reply.startswith("not sent:")


def test_a_bad_destination_is_refused_before_anything(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 2)
    for bad in ("qa@", "q a@ops.example", "qa\r\nRCPT TO:<x@y>@ops.example", "ünï@ops.example"):
        result = send_test(store, _smtp(ctl.port), OPERATOR, mid, bad)
        assert not result.sent and "test address" in result.reply
    assert handler.messages == [] and not [e for e in audit.entries(store) if e.action == TEST_SEND]


def test_unknown_recipient_is_not_sent(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 2)
    result = send_test(store, _smtp(ctl.port), OPERATOR, mid, "qa@ops.example", recipient="nobody@example.net")
    assert not result.sent and "no recipient 'nobody@example.net'" in result.reply and handler.messages == []


# -- preview ---------------------------------------------------------------------


async def test_preview_headers_are_the_headers_the_engine_sends(store, tmp_path, smtpd_factory) -> None:  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 2, html=HTML, list_unsubscribe=UNSUBSCRIBE, sender=f"Shop News <{SENDER}>",
                      reply_to="help@shop.example")
    config = _smtp(ctl.port)
    previews = {}
    for address in ("user0@example.net", "user1@example.net"):
        r = await trio.to_thread.run_sync(lambda a=address: render_message(store, config, mid, address=a))
        assert r.ok, r.error
        previews[address] = message_parts(r.built.data)
    async with running(store, config):
        await wait_done(store, mid)
    for received in handler.messages:
        sent = message_parts(received.data)
        shown = previews[received.rcpt_tos[0]]
        # Date is "now" and the MIME boundary random per compiled revision; all else is equal.
        strip = {"Date", "Content-Type"}
        assert [h for h in shown.headers if h[0] not in strip] == [h for h in sent.headers if h[0] not in strip]
        assert [h[0] for h in shown.headers] == [h[0] for h in sent.headers]
        assert (shown.text, shown.html) == (sent.text, sent.html)
    assert {h[0] for h in shown.headers} >= {"From", "Reply-To", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"}


def test_preview_of_unsaved_parts(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console.diffing import Parts

    mid = add_mailing(store, tmp_path, 2, html=HTML)
    r = render_message(store, fast_config(), mid, parts=Parts("Corrected {{ name }}", "New text {{ code }}\n", "<i>{{ name }}</i>"))
    assert r.ok and r.revision is None
    shown = message_parts(r.built.data)
    assert dict(shown.headers)["Subject"] == "Corrected User 0"
    assert (shown.text, shown.html) == ("New text C0\n", "<i>User 0</i>\n")
    saved = render_message(store, fast_config(), mid)
    assert saved.revision == 1 and dict(message_parts(saved.built.data).headers)["Subject"] == "Hello User 0"


def test_preview_errors_come_back_as_text(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.console.diffing import Parts

    mid = add_mailing(store, tmp_path, 2)
    r = render_message(store, fast_config(), mid, parts=Parts("Hi", "{{ 1 // 0 }}", None))
    assert not r.ok and "ZeroDivisionError" in r.error
    r = render_message(store, fast_config(), mid, parts=Parts("Hi {% if name %}", "x", None))
    assert not r.ok and "cannot be compiled" in r.error
    r = render_message(store, fast_config(), mid, address="ghost@example.net")
    assert not r.ok and r.recipient is None and "no recipient" in r.error


def test_next_recipient_is_the_queue_head_then_any(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import queue

    mid = add_mailing(store, tmp_path, 3)
    first = next_recipient(store, mid)
    assert first is not None and first.email == "user0@example.net" and first.state == "queued"
    claimed = queue.claim(store, "e1", 3, lease_seconds=60)
    queue.record(store, "e1", [queue.Outcome(c.id, c.mailing_id, "sent", revisions.newest_revision(store, mid).id)
                              for c in claimed])
    fallback = next_recipient(store, mid)
    assert fallback is not None and fallback.state == "sent"
    assert recipient_by_address(store, mid, "USER2@Example.NET".replace("USER2", "user2")) is not None


def test_last_errors_are_distinct_newest_first_and_bounded(store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mailconsole.store import queue

    mid = add_mailing(store, tmp_path, 8)
    claimed = queue.claim(store, "e1", 8, lease_seconds=60)
    outcomes = [queue.Outcome(c.id, c.mailing_id, "failed", error="550 no such user") for c in claimed[:5]]
    outcomes += [queue.Outcome(c.id, c.mailing_id, "failed", error="552 mailbox full") for c in claimed[5:7]]
    queue.record(store, "e1", outcomes)
    got = last_errors(store, mid)
    assert {(e.text, e.count) for e in got.errors} == {("550 no such user", 5), ("552 mailbox full", 2)}
    assert got.complete and got.scanned == 7
    small = last_errors(store, mid, scan=3, limit=1)
    assert len(small.errors) == 1 and small.scanned == 3 and not small.complete
