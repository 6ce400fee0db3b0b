"""The relay's queue id, read from its reply to the end-of-data dot.

A relay that accepts a message names the queue entry it made in its 250 reply;
that id is how the relay agent finds the message in the relay's queue and log.
The common forms (RFC 5321 leaves the text free):

    Postfix    250 2.0.0 Ok: queued as 4Xyz1C2D3E
    Exim       250 OK id=1abcD-000123-AB
    Sendmail   250 2.0.0 x1234 Message accepted for delivery
    Microsoft  250 2.6.0 <id@host> [InternalId=…] Queued mail for delivery

One precompiled pattern, searched once per message when the result is recorded
(in the writer's thread, never at the gate). A reply that matches none is kept
as it is (bounded), so nothing the relay said is lost.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_QUEUE_ID = 64  # the column's size: anything longer is not a queue id we can use
MAX_RAW_REPLY = 300  # of a reply naming no queue id, this much is kept

_QUEUE_ID = re.compile(
    r"queued as (?P<postfix>[0-9A-Za-z]+)"
    r"|\bid=(?P<exim>[0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+)"
    r"|(?P<sendmail>[0-9A-Za-z]+) Message accepted for delivery"
    r"|<(?P<microsoft>[^<>\s]+)>.*Queued mail for delivery",
    re.IGNORECASE,
)


class RelayReceipt(NamedTuple):
    queue_id: str | None  # None: the reply named none we recognise
    raw: str | None  # the reply itself when it named no queue id (bounded); else None


def parse(reply: str) -> RelayReceipt:
    """The queue id in a reply to the dot (code included or not), else the raw reply."""
    match = _QUEUE_ID.search(reply)
    if match is not None:
        queue_id = match.group(match.lastgroup or 0)
        if len(queue_id) <= MAX_QUEUE_ID:
            return RelayReceipt(queue_id, None)
    raw = reply.strip()
    return RelayReceipt(None, raw[:MAX_RAW_REPLY] + (" […]" if len(raw) > MAX_RAW_REPLY else ""))
