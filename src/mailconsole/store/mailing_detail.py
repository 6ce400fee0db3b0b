"""What a mailing's detail view reads beyond the counters: recipients one by one, the last errors.

Every read here is bounded by an index, whatever the size of the mailing: a
recipient by address uses the (mailing, email) unique index, the next one in the
queue and the last errors walk the claim index (mailing, state, due) for at most
a fixed number of rows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from . import audit
from .actor import Actor
from .connection import Store
from .importer import normal_address
from .mailings import get_live
from .schema import messages, revisions, state_is

# The states whose messages carry the error of their last attempt: failed for good,
# or back in the queue (or suspended) after a temporary failure.
ERROR_STATES = ("failed", "queued", "suspended")
# Messages read per state for the last errors: enough to see what goes wrong, and
# the read costs the same on a mailing of a million messages.
ERROR_SCAN = 1000
TEST_SEND = "test-send"  # the audit action of a test send


@dataclass(frozen=True)
class Recipient:
    """One message of a mailing: to whom, with which merge fields, and where it is."""

    message_id: int
    email: str
    fields: dict[str, object]
    state: str
    attempts: int
    sent_at: float | None
    revision_id: int | None


@dataclass(frozen=True)
class ErrorCount:
    text: str
    count: int


@dataclass(frozen=True)
class LastErrors:
    """The most recent distinct errors, each with how often it occurs among `scanned` messages.

    `complete` is False when more messages with errors exist than were read:
    counts are then those of the most recent ones, not of the whole mailing.
    """

    errors: list[ErrorCount]
    scanned: int
    complete: bool


def _recipient(row) -> Recipient:  # type: ignore[no-untyped-def]
    return Recipient(row.id, row.email, json.loads(row.fields), row.state, row.attempts, row.sent_at, row.revision_id)


_RECIPIENT_COLUMNS = (
    messages.c.id, messages.c.email, messages.c.fields, messages.c.state, messages.c.attempts,
    messages.c.sent_at, messages.c.revision_id,
)


def recipient_by_address(store: Store, mailing_id: int, address: str, account: str = "default") -> Recipient | None:
    """The mailing's message to `address` (domain case-insensitive), or None if it has none."""
    with store.read() as conn:
        get_live(conn, mailing_id, account)
        row = conn.execute(
            select(*_RECIPIENT_COLUMNS).where(messages.c.mailing_id == mailing_id,
                                              messages.c.email == normal_address(address))
        ).first()
    return _recipient(row) if row is not None else None


def next_recipient(store: Store, mailing_id: int, account: str = "default") -> Recipient | None:
    """The queued message due first (the one an engine takes next), else the mailing's first message.

    The fallback lets an operator preview a mailing that has nothing queued any more
    (all sent, or all failed); `Recipient.state` says which it is.
    """
    with store.read() as conn:
        get_live(conn, mailing_id, account)
        row = conn.execute(
            select(*_RECIPIENT_COLUMNS)
            .where(messages.c.mailing_id == mailing_id, state_is("queued"))
            .order_by(messages.c.due_at, messages.c.id).limit(1)
        ).first()
        if row is None:
            row = conn.execute(
                select(*_RECIPIENT_COLUMNS).where(messages.c.mailing_id == mailing_id).order_by(messages.c.id).limit(1)
            ).first()
    return _recipient(row) if row is not None else None


def last_errors(store: Store, mailing_id: int, account: str = "default", *, limit: int = 5,
                scan: int = ERROR_SCAN) -> LastErrors:
    """Up to `limit` distinct last errors, most recent first, counted over the latest `scan` messages per state.

    The newest rows of each state are taken by the claim index first and only then
    filtered on having an error, so no read walks more than `scan` rows per state
    (a retried message is due later than those never tried, so it comes first).
    """
    seen: list[tuple[float, int, str]] = []
    complete = True
    with store.read() as conn:
        get_live(conn, mailing_id, account)
        for state in ERROR_STATES:
            newest = (
                select(messages.c.due_at, messages.c.id, messages.c.last_error)
                .where(messages.c.mailing_id == mailing_id, state_is(state))
                .order_by(messages.c.due_at.desc(), messages.c.id.desc()).limit(scan)
                .subquery()
            )
            rows = conn.execute(select(newest).where(newest.c.last_error.is_not(None))).all()
            complete = complete and len(rows) < scan
            seen.extend((r.due_at, r.id, r.last_error) for r in rows)
    # Equal times (one batch recorded at once) in the order queued, newest first, on
    # every backend: the database returns ties in an order of its own.
    seen.sort(reverse=True)
    counts = Counter(text for _, _, text in seen)
    order = list(dict.fromkeys(text for _, _, text in seen))
    return LastErrors([ErrorCount(text, counts[text]) for text in order[:limit]], len(seen), complete)


def revision_number(store: Store, revision_id: int) -> int | None:
    """The number (1, 2, …) of a revision, by its id."""
    with store.read() as conn:
        return conn.execute(select(revisions.c.number).where(revisions.c.id == revision_id)).scalar()


def record_test_send(
    store: Store, actor: Actor, account: str, mailing_id: int, *, revision: int | None, recipient: str, to: str,
    reply: str,
) -> None:
    """Audit one test send: which revision, rendered for whom, sent where, and what the server said."""
    with store.write() as conn:
        audit.record(conn, store.now(), actor, account, TEST_SEND, mailing_id,
                     revision=revision, recipient=recipient, to=to, reply=reply)


__all__ = [
    "TEST_SEND", "Recipient", "ErrorCount", "LastErrors", "recipient_by_address", "next_recipient", "last_errors",
    "revision_number", "record_test_send",
]
