"""One message exactly as the engine would send it, for an operator to look at (or test-send).

Built by the engine's own builder (`message.CompiledRevision`), from the same
store read the engine makes at claim time, with the engine's configuration
(Message-ID domain, DKIM): the headers shown are the headers sent, List-Unsubscribe
and Message-ID included. Only the Date (now) and the MIME boundary (random per
compiled revision) differ from the real send.

Nothing here writes to the store: a preview never touches the recipient's message.
Whatever keeps the message from being built (no such recipient, a template that
fails for this recipient, a sender the engine refuses) comes back as `error`, as
the engine would record it, instead of being raised.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Protocol

from ..store import Store
from ..store.mailing_detail import Recipient, next_recipient, recipient_by_address, revision_number
from ..store.queue import newest_revisions
from .addresses import list_unsubscribe_problem, sender_problem
from .config import ConfigError, EngineConfig
from .dkim_signing import load_signer
from .message import Built, CompiledRevision, MergeError, RevisionData


class TemplateParts(Protocol):
    """Parts of a template not saved yet (the console's `diffing.Parts` is one)."""

    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class Rendered:
    """One rendered message, or why it could not be built.

    `revision` is the number of the saved revision used, None for unsaved parts.
    `recipient` is None only when no recipient was found.
    """

    mailing_id: int
    revision: int | None
    recipient: Recipient | None
    built: Built | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.built is not None


def find_recipient(store: Store, mailing_id: int, address: str | None, account: str = "default") -> Recipient | None:
    """The recipient at `address`, or, with no address, the next one in the queue."""
    if address is None or not address.strip():
        return next_recipient(store, mailing_id, account)
    return recipient_by_address(store, mailing_id, address, account)


def compile_revision(mailing_id: int, rev: RevisionData, config: EngineConfig) -> CompiledRevision | str:
    """The revision ready to build, or why the engine would send none of its messages."""
    problem = sender_problem(rev.sender) or list_unsubscribe_problem(rev.list_unsubscribe)
    if problem is not None:
        return problem + "; not sent"
    try:
        signer = load_signer(config.dkim_key_file, config.dkim_selector, config.dkim_domain)
    except ConfigError as exc:
        return f"DKIM configuration: {exc}"
    try:
        return CompiledRevision(mailing_id, rev, domain=config.message_domain, signer=signer)
    except Exception as exc:  # a stored template that no longer compiles: the engine fails it the same way
        return f"template cannot be compiled: {exc.__class__.__name__}: {exc}"


def render_message(
    store: Store,
    config: EngineConfig,
    mailing_id: int,
    *,
    address: str | None = None,
    parts: TemplateParts | None = None,
    account: str = "default",
    now: float | None = None,
) -> Rendered:
    """Blocking (store reads, template render): call from a worker thread.

    `address` picks the recipient (None: the next in the queue); `parts` replaces
    the newest revision's subject, text and HTML (an edit not saved yet).
    StoreError (no such mailing, another account's) is raised; all else is `error`.
    """
    recipient = find_recipient(store, mailing_id, address, account)
    row = newest_revisions(store, [mailing_id]).get(mailing_id)
    if row is None:  # every mailing is created with a revision; a half-deleted one may have none left
        return Rendered(mailing_id, None, recipient, error=f"mailing {mailing_id} has no template revision")
    rev = RevisionData(*row)
    number = revision_number(store, rev.id)
    if parts is not None:
        rev = replace(rev, subject=parts.subject, text=parts.text, html=parts.html or None)
        number = None
    if recipient is None:
        who = f"no recipient {address.strip()!r} in mailing {mailing_id}" if address and address.strip() \
            else f"mailing {mailing_id} has no recipients"
        return Rendered(mailing_id, number, None, error=who)
    compiled = compile_revision(mailing_id, rev, config)
    if isinstance(compiled, str):
        return Rendered(mailing_id, number, recipient, error=compiled)
    try:
        built = compiled.build(recipient.message_id, recipient.email, recipient.fields, now)
    except MergeError as exc:
        return Rendered(mailing_id, number, recipient, error=str(exc))
    return Rendered(mailing_id, number, recipient, built)


@dataclass(frozen=True)
class MessageParts:
    """A built message as a reader sees it: decoded headers, the text part, the HTML part's source."""

    headers: list[tuple[str, str]]
    text: str | None
    html: str | None


def message_parts(data: bytes) -> MessageParts:
    """Parse `data` with the `email` package, as a receiving mail store would (line ends made local)."""
    msg = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    headers = [(name, str(value)) for name, value in msg.items()]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    return MessageParts(
        headers,
        text.get_content() if isinstance(text, EmailMessage) else None,
        html.get_content() if isinstance(html, EmailMessage) else None,
    )


__all__ = ["TemplateParts", "Rendered", "find_recipient", "compile_revision", "render_message", "MessageParts",
           "message_parts"]
