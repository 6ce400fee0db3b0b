"""The relay's queue id, from the reply to the dot of each common MTA (store/relay_reply.py)."""

from __future__ import annotations

import pytest

from mailconsole.store.relay_reply import MAX_RAW_REPLY, RelayReceipt, parse


@pytest.mark.parametrize(
    ("reply", "queue_id"),
    [
        ("250 2.0.0 Ok: queued as 6B2C2166088", "6B2C2166088"),  # Postfix, short ids
        ("250 2.0.0 Ok: queued as 4Xyz1C2D3Ez8kHb", "4Xyz1C2D3Ez8kHb"),  # Postfix, long ids
        ("250 OK id=1abcD-000123-AB", "1abcD-000123-AB"),  # Exim 4.97+
        ("250 OK id=1nP3xY-0004Kd-7h", "1nP3xY-0004Kd-7h"),  # Exim before 4.97
        ("250 2.0.0 x1234 Message accepted for delivery", "x1234"),  # Sendmail
        ("250 2.0.0 3AB4cD5e012345 Message accepted for delivery", "3AB4cD5e012345"),
        ("250 2.6.0 <a1b2@mx.contoso.example> [InternalId=123, Hostname=MX1] Queued mail for delivery",
         "a1b2@mx.contoso.example"),  # Microsoft Exchange
        ("2.0.0 Ok: queued as ABCDEF123", "ABCDEF123"),  # the text without its code
    ],
)
def test_the_queue_id_of_each_common_form(reply: str, queue_id: str) -> None:
    assert parse(reply) == RelayReceipt(queue_id, None)


def test_a_reply_naming_no_queue_id_is_kept_as_it_is() -> None:
    assert parse("250 2.0.0 queued") == RelayReceipt(None, "250 2.0.0 queued")
    assert parse("250 discarded") == RelayReceipt(None, "250 discarded")


def test_a_kept_reply_is_bounded() -> None:
    receipt = parse("250 " + "x" * 10_000)
    assert receipt.queue_id is None and receipt.raw is not None
    assert len(receipt.raw) <= MAX_RAW_REPLY + 4 and receipt.raw.endswith("[…]")


def test_an_overlong_id_is_not_taken_for_a_queue_id() -> None:
    assert parse("250 queued as " + "A" * 100).queue_id is None
