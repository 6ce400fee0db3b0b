"""The private Postfix itself: it relays to the next hop, logs each outcome, bounces refusals."""

from __future__ import annotations

import smtplib
import time

from postfix import NextHop, PrivatePostfix


def _send(relay: PrivatePostfix, recipients: list[str]) -> list[str]:
    replies = []
    with smtplib.SMTP("127.0.0.1", relay.port) as s:
        for rcpt in recipients:
            s.mail("news@shop.example")
            s.rcpt(rcpt)
            code, text = s.data(f"Subject: hi\r\nTo: {rcpt}\r\n\r\nbody\r\n".encode())
            assert code == 250
            replies.append(text.decode())
    return replies


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_relays_to_the_next_hop_and_logs_each_outcome(postfix: PrivatePostfix, next_hop: NextHop) -> None:
    next_hop.refuse = {"gone@example.net"}
    replies = _send(postfix, ["a@example.net", "gone@example.net"])
    assert all("queued as" in r for r in replies)
    _wait(lambda: "status=bounced" in postfix.log_text() and next_hop.recipients(ending="@example.net"))
    assert next_hop.recipients(ending="@example.net") == ["a@example.net"]
    log = postfix.log_text()
    assert "status=sent" in log and "said: 550 5.1.1" in log
    assert f"configuration {postfix.config}" in log  # its own configuration, not /etc/postfix
