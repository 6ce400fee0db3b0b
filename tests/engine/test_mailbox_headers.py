"""What the big mailbox providers look at, as a real SMTP server receives it and the
`email` package parses it: From with a display name, Reply-To, Message-ID, list headers."""

from __future__ import annotations

from email.headerregistry import Address

from sqlalchemy import select

from mailconsole.store import Store
from mailconsole.store.identity import read_store_id
from mailconsole.store.list_headers import set_account_list_id
from mailconsole.store.schema import messages

from .conftest import OPERATOR, RecordingHandler, add_mailing, fast_config, message_rows, parse, running, wait_done


async def _send(store, tmp_path, smtpd_factory, n: int = 2, **options):  # type: ignore[no-untyped-def]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, n, **options)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=2)):
        m = await wait_done(store, mid)
    assert m.sent == n, m
    return mid, {r: parse(got[0].data) for r, got in handler.by_rcpt().items()}, handler


async def test_a_display_name_that_is_not_ascii_is_sent_rfc2047_encoded(store, tmp_path, smtpd_factory):
    name = "Bücher & Co. — Ünïcödé Newsletter mit einem sehr langen Namen, über 75 Zeichen"
    _, received, handler = await _send(store, tmp_path, smtpd_factory, sender=f'"{name}" <news@shop.example.com>',
                                      reply_to="Kundendienst Müller <help@shop.example.com>")
    for raw in handler.messages:
        assert raw.mail_from == "news@shop.example.com"  # the envelope: the bare address
        head = raw.data.split(b"\r\n\r\n", 1)[0]
        assert head.isascii() and b"=?utf-8?" in head
        assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    for msg in received.values():
        [sender] = msg["From"].addresses
        assert (sender.display_name, sender.addr_spec) == (name, "news@shop.example.com")
        [reply] = msg["Reply-To"].addresses
        assert (reply.display_name, reply.addr_spec) == ("Kundendienst Müller", "help@shop.example.com")
        assert not msg["From"].defects and not msg["Reply-To"].defects


async def test_an_ascii_display_name_is_sent_as_it_reads(store, tmp_path, smtpd_factory):
    _, received, handler = await _send(store, tmp_path, smtpd_factory, sender='"Shop, Inc." <news@shop.example.com>')
    assert b'\r\nFrom: "Shop, Inc." <news@shop.example.com>\r\n' in b"\r\n" + handler.messages[0].data
    assert "Reply-To" not in received["user0@example.net"]
    assert received["user0@example.net"]["From"].addresses == (Address("Shop, Inc.", addr_spec="news@shop.example.com"),)


# -- Message-IDs -----------------------------------------------------------------------


class RefusingFirst(RecordingHandler):
    """Answers the first DATA with 451 (the engine retries), and keeps every attempt's bytes."""

    def __init__(self) -> None:
        super().__init__(data_replies=["451 4.3.0 try again later"])
        self.attempts: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.attempts.append(envelope.original_content or envelope.content)
        return await super().handle_DATA(server, session, envelope)


async def test_the_message_id_names_the_store_and_stays_the_same_across_retries(store, tmp_path, smtpd_factory):
    ctl, handler = smtpd_factory(RefusingFirst())
    mid = add_mailing(store, tmp_path, 1)
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
        m = await wait_done(store, mid)
    assert m.sent == 1
    first, second = (parse(data)["Message-ID"] for data in handler.attempts)
    assert first == second
    with store.read() as conn:
        store_id = read_store_id(conn)
    [message_id] = message_rows_ids(store, mid)
    assert first == f"<m{message_id}.{mid}.{store_id}@shop.example>" and len(store_id) == 26


async def test_two_stores_never_send_the_same_message_id(tmp_path, smtpd_factory):
    """A re-created store numbers its messages from 1 again: the store id keeps the ids apart."""
    ctl, handler = smtpd_factory()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        other = Store(str(tmp_path / name / "store.db"))
        try:
            mid = add_mailing(other, tmp_path, 3)
            async with running(other, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
                await wait_done(other, mid)
        finally:
            other.close()
    ids = [parse(m.data)["Message-ID"] for m in handler.messages]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert len({i.split(".", 1)[0] for i in ids}) == 3  # the same message numbers in both stores


def message_rows_ids(store: Store, mailing_id: int) -> list[int]:
    with store.read() as conn:
        return list(conn.execute(select(messages.c.id).where(messages.c.mailing_id == mailing_id)).scalars())


# -- list headers ----------------------------------------------------------------------


async def test_a_per_recipient_https_unsubscribe_gets_the_one_click_post_header(store, tmp_path, smtpd_factory):
    value = "<https://shop.example.com/u?e={{ email|urlencode }}&c={{ code }}>, <mailto:unsub@shop.example.com>"
    _, received, _ = await _send(store, tmp_path, smtpd_factory, 3, list_unsubscribe=value,
                                 list_id="Shop news <news.shop.example.com>")
    for i in range(3):
        msg = received[f"user{i}@example.net"]
        assert msg["List-Unsubscribe"] == (f"<https://shop.example.com/u?e=user{i}%40example.net&c=C{i}>, "
                                           "<mailto:unsub@shop.example.com>")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] == "Shop news <news.shop.example.com>"


async def test_a_mailto_only_unsubscribe_has_no_post_header_and_the_account_list_id_applies(store, tmp_path, smtpd_factory):
    set_account_list_id(store, OPERATOR, "<all.shop.example.com>")
    _, received, _ = await _send(store, tmp_path, smtpd_factory, 1, list_unsubscribe="<mailto:unsub@shop.example.com>")
    msg = received["user0@example.net"]
    assert msg["List-Unsubscribe"] == "<mailto:unsub@shop.example.com>" and "List-Unsubscribe-Post" not in msg
    assert msg["List-Id"] == "<all.shop.example.com>"


async def test_an_unsubscribe_url_that_a_merge_value_breaks_fails_that_message_alone(store, tmp_path, smtpd_factory):
    rows = [{"email": "ok@example.net", "token": "abc"}, {"email": "bad@example.net", "token": "a b\"c"},
            {"email": "ok2@example.net", "token": "def"}]
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, rows=rows, subject="Hi", text="Hello\n",
                      list_unsubscribe="<https://shop.example.com/u/{{ token }}>")
    async with running(store, fast_config(transport=f"smtp://127.0.0.1:{ctl.port}", workers=1)):
        m = await wait_done(store, mid)
    assert (m.sent, m.failed) == (2, 1)
    assert sorted(handler.by_rcpt()) == ["ok2@example.net", "ok@example.net"]
    state, _attempts, error, _ = message_rows(store, mid)["bad@example.net"]
    assert state == "failed" and "List-Unsubscribe" in error and "bad@example.net" in error
