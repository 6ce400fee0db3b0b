"""Mailboxes an operator types for a mailing: the sender and Reply-To.

Either a bare address or `Display Name <address>`. The address is checked like
a recipient's (importer.address_problem: ASCII, the form SMTP carries); the
display name may be any Unicode (the engine writes it RFC 2047-encoded), but
no control character or line break, which no header may hold.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import parseaddr, unquote

from .. import templating
from .errors import InvalidInput

MAX_DISPLAY_NAME = 300  # mailings.sender_name
# C0 and C1 controls and DEL: a mail reader would show or act on them.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# `Display Name <address>`: the name is all before the angle brackets, quoted or
# not. Operators write "Shop, Inc. <a@b>" or "Bücher & Co. <a@b>" meaning one
# mailbox; RFC 5322 would want those names quoted, and the engine quotes or
# encodes them when it writes the header.
_NAME_ADDR = re.compile(r"\s*(?P<name>[^<>]*?)\s*<(?P<address>[^<>]*)>\s*")


def split_mailbox(value: str) -> tuple[str, str] | None:
    """(display name, address) of `Name <address>`, or None if `value` is not of that form."""
    match = _NAME_ADDR.fullmatch(value)
    if match is None:
        return None
    name = match["name"]
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = unquote(name)  # "Shop, Inc." as RFC 5322 quotes it (and as display() writes it)
    return name.strip(), match["address"].strip()


def sender_mailbox(sender: str, sender_name: str) -> tuple[str, str]:
    """(display name, address) of a mailing's stored sender, as the engine sends it.

    A store from before display names were kept apart may hold `Name <address>`
    in the sender itself: it is split as the engine always did.
    """
    if sender_name or "<" not in sender:
        return sender_name, sender.strip()
    name, address = parseaddr(sender)
    return name, address or sender.strip()


def parse_mailbox(value: str, what: str) -> tuple[str, str]:
    """(display name or "", address) of what an operator typed, or InvalidInput naming `what`."""
    from .importer import address_problem  # late: importer imports this module

    if templating.has_line_break(value):
        raise InvalidInput(f"{what} contains a line break; it goes into a mail header and must be one line")
    control = _CONTROL.search(value)
    if control:
        raise InvalidInput(f"{what} has the control character \\x{ord(control.group()):02x}")
    if "<" not in value:  # a bare address: checked as it is written
        address, name = value.strip(), ""
    else:
        parts = split_mailbox(value)
        if parts is None:
            raise InvalidInput(f"{what} {value!r} is not one mailbox (expected name@domain or 'Display Name <name@domain>')")
        name, address = parts
    why = address_problem(address)
    if why:
        raise InvalidInput(f"{what} {value!r} {why}" if not name else f"{what} {value!r}: the address {address!r} {why}")
    if "=?" in name:
        # A mail reader would decode it as an RFC 2047 word: the name shown would not be the one given.
        raise InvalidInput(f"{what}'s display name contains '=?'; give the name as plain text (it is encoded when sent)")
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidInput(f"{what}'s display name is {len(name):,} characters; the limit is {MAX_DISPLAY_NAME}")
    return name, address


def display(name: str | None, address: str) -> str:
    """The mailbox as an operator writes it: `Name <address>` (quoted when needed), or the address."""
    return str(Address(display_name=name, addr_spec=address)) if name else address
