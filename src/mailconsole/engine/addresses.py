"""Whether an address or a fixed header value can be sent as the engine sends it.

The engine speaks plain SMTP without SMTPUTF8 and writes ASCII headers, so an
address must be printable ASCII without spaces or angle brackets, and a header
value must hold no line break (which would start a header of its own, or, in an
envelope, a command of its own). `create` checks the same at import; these
checks are for what the store may hold anyway: rows written by an older
release, or by hand. A message that fails them fails alone, with the reason,
as fail kind "address"; the engine goes on with the others.
"""

from __future__ import annotations

from email.utils import parseaddr

# Longest List-Unsubscribe value that still fits one header line of 998 characters.
MAX_HEADER_VALUE = 998 - len("List-Unsubscribe: ")


def address_problem(role: str, address: str) -> str | None:
    """Why `address` cannot be used in an envelope and a header, or None if it can."""
    if not address.isascii():
        return f"{role} address {address!r} is not plain ASCII, and this engine does not use SMTPUTF8"
    if not address.isprintable() or any(c in address for c in " <>,"):
        return f"{role} address {address!r} holds a space, a control character or one of < > ,"
    local, at, domain = address.rpartition("@")
    if not (at and local and domain):
        return f"{role} address {address!r} is not of the form name@domain"
    return None


def sender_problem(sender: str) -> str | None:
    """Why a mailing's From value ("Name <address>" or an address) cannot be sent."""
    if not sender.isprintable():
        return f"sender {sender!r} holds a line break or a control character"
    name, address = parseaddr(sender)
    if not address:
        return f"sender {sender!r} names no address"
    return address_problem("sender", address)


def list_unsubscribe_problem(value: str | None) -> str | None:
    """Why a mailing's List-Unsubscribe value cannot go into a header."""
    if value is None or not value.strip():
        return None
    if not value.isascii() or not value.isprintable():
        return f"List-Unsubscribe {value!r} is not printable ASCII on one line"
    if len(value.strip()) > MAX_HEADER_VALUE:
        return f"List-Unsubscribe is over {MAX_HEADER_VALUE} characters"
    return None
