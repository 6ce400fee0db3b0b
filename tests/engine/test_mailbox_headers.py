"""What the big mailbox providers look at, as a real SMTP server receives it and the
`email` package parses it: From with a display name, Reply-To, Message-ID, list headers."""

from __future__ import annotations

from email.headerregistry import Address

from .conftest import add_mailing, fast_config, parse, running, wait_done


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
