"""Header lines a revision sends unchanged to every recipient: From, Reply-To.

Folded by the email package with its SMTP policy (CRLF, RFC 2047 encoded words
for a display name that is not ASCII): done once per revision, so its cost
(~50 µs) does not matter per message.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import Address

from ..store.senders import sender_mailbox, split_mailbox


def mailbox_header(field: str, name: str, address: str) -> str:
    """`Field: Name <address>\\r\\n`, or `Field: address\\r\\n` without a name."""
    mailbox = Address(display_name=name, addr_spec=address) if name else Address(addr_spec=address)
    return policy.SMTP.fold(field, policy.SMTP.header_factory(field, mailbox))


def reply_to_header(reply_to: str) -> str:
    """The Reply-To line of a stored `Name <address>` or address (checked when it was saved)."""
    parts = split_mailbox(reply_to)
    name, address = parts if parts is not None else ("", reply_to.strip())
    return mailbox_header("Reply-To", name, address)


# sender_mailbox lives with the other mailbox parsing; the recipients export uses it too.
__all__ = ["mailbox_header", "sender_mailbox", "reply_to_header"]
