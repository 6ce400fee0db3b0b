"""Who got which mail: a mailing's recipients by state and revision, streamed, and as CSV.

After a faulty revision went out, the operator needs the people who were sent it
(to send them a correction): address, merge fields, when, and the Message-ID the
engine gave the message. A mailing may have a million messages, so the rows are
read in keyset-paginated chunks (`id > last id seen`, CHUNK at a time, through
ix_messages_recipients), each in its own short read transaction: no snapshot is
held for the whole export (under WAL a long reader keeps the file's WAL from
being checkpointed), and no more than one chunk is in memory.

Each chunk is consistent by itself; a mailing that is still sending can gain
sent messages between two chunks. Stop or pause it first for an exact list.

Which revision a message was sent with is recorded when it is sent
(messages.revision_id), so `revision` selects among sent messages. Messages not
sent yet (queued, suspended) have none: they will be rendered with the newest
revision when they go out, so for them only the newest revision is accepted
(and selects them all). Failed messages record none either: `revision` is
refused with them.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

from sqlalchemy import Select, select

from .. import message_ids
from ..times import format_utc
from .connection import Store
from .errors import InvalidInput, NotFound, StoreError
from .identity import read_store_id
from .mailings import get_live
from .schema import messages, revisions, state_is
from .senders import sender_mailbox

STATES = ("sent", "queued", "failed", "suspended")
_UNSENT = ("queued", "suspended")
# Rows per read transaction: ~5 ms of reading, a few MB at most in memory.
CHUNK = 5000
# ISO 8601 in UTC, to the second (as the engine's Date header).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# What a spreadsheet would read as the start of a formula (CSV injection).
_FORMULA_START = frozenset(("=", "+", "-", "@", "\t", "\r"))


class Recipient(NamedTuple):
    """One message of the mailing: to whom, with what, and how it went.

    A NamedTuple rather than a frozen dataclass: a million of them are made per
    export, and a tuple is built in a third of the time.
    """

    id: int  # the message's row id (part of its Message-ID)
    email: str
    fields: dict[str, str]
    state: str
    sent_at: float | None
    revision: int | None  # the revision number it was sent with; None if not sent
    message_id: str
    error: str | None  # the last error (of a failed message)

    def as_dict(self) -> dict:
        return self._asdict()


@dataclass(frozen=True)
class Selection:
    """What one export reads, checked: see select_recipients."""

    mailing_id: int
    state: str
    revision: int | None  # the number asked for
    fields: tuple[str, ...]  # the mailing's merge fields, in their declared order
    # revision_id values to read, in output order (None: messages without one)
    groups: tuple[int | None, ...]
    numbers: dict[int, int]  # revision id -> number
    id_tail: str  # message_ids.tail() of this mailing

    @property
    def columns(self) -> list[str]:
        fixed = ["sent_at", "revision", "message_id", "state"] + (["error"] if self.state == "failed" else [])
        return ["email", *self.fields, *fixed]


def select_recipients(
    store: Store,
    mailing_id: int,
    *,
    revision: int | None = None,
    state: str = "sent",
    account: str = "default",
    message_domain: str | None = None,
) -> Selection:
    """Check what is asked and resolve it; NotFound or InvalidInput (one line) if it cannot be."""
    if state not in STATES:
        raise InvalidInput(f"unknown state {state!r}; give one of {', '.join(STATES)}")
    with store.read() as conn:
        m = get_live(conn, mailing_id, account)
        revs = conn.execute(
            select(revisions.c.id, revisions.c.number).where(revisions.c.mailing_id == mailing_id).order_by(revisions.c.number)
        ).all()
        store_id = read_store_id(conn)
    numbers = {r.id: r.number for r in revs}
    by_number = {r.number: r.id for r in revs}
    newest = revs[-1].number if revs else None
    if revision is not None and revision not in by_number:
        have = f"revisions 1 to {newest}" if newest and newest > 1 else f"only revision {newest}" if newest else "no revision"
        raise NotFound(f"mailing {mailing_id} has no revision {revision} (it has {have}; see `mailconsole template show {mailing_id}`)")
    if revision is not None and state == "failed":
        raise InvalidInput("failed messages were not sent, so they record no revision; leave out the revision")
    if revision is not None and state in _UNSENT and revision != newest:
        raise InvalidInput(
            f"{state} messages are not sent yet: they go out with the newest revision ({newest}), "
            f"not revision {revision}; give revision {newest} or none"
        )
    if revision is not None and state == "sent":
        groups: tuple[int | None, ...] = (by_number[revision],)
    elif state == "sent":
        groups = (*numbers, None)  # by revision, then any sent before revisions were recorded
    else:
        groups = (None, *numbers)  # unsent messages have none; a row with one is still listed
    domain = message_domain or message_ids.domain_of(sender_mailbox(m.sender, m.sender_name or "")[1])
    return Selection(
        mailing_id, state, revision, tuple(json.loads(m.fields)), groups, numbers,
        message_ids.tail(mailing_id, store_id, domain),
    )


def iter_recipients(
    store: Store,
    mailing_id: int,
    *,
    revision: int | None = None,
    state: str = "sent",
    account: str = "default",
    message_domain: str | None = None,
) -> Iterator[Recipient]:
    """The mailing's messages in `state` (sent with `revision`, if given), streamed.

    Checked at the call, before the first row (see select_recipients). Ordered by
    revision, then by message id. message_domain: the Message-ID domain the engine
    was configured with (its `message_domain`); default the sender's, as the engine's.
    """
    selection = select_recipients(
        store, mailing_id, revision=revision, state=state, account=account, message_domain=message_domain
    )
    return rows(store, selection)


def chunk_query(sel: Selection, revision_id: int | None, after: int) -> Select:
    """The next CHUNK messages of the selection with this revision_id, after message id `after`.

    Equalities on (mailing, state, revision) and a range on id, ordered by id: a
    seek into ix_messages_recipients and a walk along it (the tests EXPLAIN it).
    """
    same_revision = messages.c.revision_id == revision_id if revision_id is not None else messages.c.revision_id.is_(None)
    return (
        select(messages.c.id, messages.c.email, messages.c.fields, messages.c.state, messages.c.sent_at,
               messages.c.revision_id, messages.c.last_error)
        .where(messages.c.mailing_id == sel.mailing_id, state_is(sel.state), same_revision,
               messages.c.id > after)
        .order_by(messages.c.id)
        .limit(CHUNK)
    )


def rows(store: Store, sel: Selection) -> Iterator[Recipient]:
    """The recipients of a checked selection, chunk by chunk (see the module docstring)."""
    for rid in sel.groups:
        last = 0
        while True:
            # The chunk is read whole and its transaction ended before a row is
            # handed out: a slow consumer (a pipe, a disk) never holds a snapshot.
            with store.read() as conn:
                chunk = conn.execute(chunk_query(sel, rid, last)).all()
            for row_id, email, fields, state, sent_at, revision_id, error in chunk:
                yield Recipient(
                    row_id, email, json.loads(fields), state, sent_at,
                    None if revision_id is None else sel.numbers.get(revision_id),
                    message_ids.with_tail(row_id, sel.id_tail), error,
                )
            if len(chunk) < CHUNK:
                break
            last = chunk[-1][0]


def inert(value: str) -> str:
    """A cell a spreadsheet will not run as a formula: one starting with = + - @ tab or CR
    gets a leading apostrophe (OWASP's advice on CSV injection)."""
    return "'" + value if value[:1] in _FORMULA_START else value


class _SecondsCache:
    """ISO 8601 of a time, formatted once per second: messages go out thousands a second,
    and strftime is a third of the export's time otherwise."""

    def __init__(self) -> None:
        self._second: int | None = None
        self._text = ""

    def __call__(self, ts: float | None) -> str:
        if ts is None:
            return ""
        second = int(ts)
        if second != self._second:
            self._second, self._text = second, format_utc(ts, TIME_FORMAT)
        return self._text


def write_rows(store: Store, sel: Selection, out: TextIO) -> int:
    """The selection as CSV (header row first) to an open text stream; returns the rows written."""
    writer = csv.writer(out)  # quotes a value holding a comma, quote, CR or LF
    writer.writerow(sel.columns)
    iso = _SecondsCache()
    fields = sel.fields
    failed = sel.state == "failed"
    n = 0
    for r in rows(store, sel):
        values = r.fields
        row = [inert(r.email), *[inert(str(values.get(f, ""))) for f in fields],
               iso(r.sent_at), "" if r.revision is None else str(r.revision), r.message_id, r.state]
        if failed:
            row.append(inert(r.error or ""))
        writer.writerow(row)
        n += 1
    return n


def check_target(path: str | Path) -> Path:
    """Where a CSV may be written, or InvalidInput: its directory must exist, it must not be one."""
    p = Path(path)
    if p.is_dir():
        raise InvalidInput(f"{p} is a directory; give a file name for the CSV")
    if not p.parent.is_dir():
        raise InvalidInput(f"directory {p.parent} does not exist; create it or give another path")
    return p


def write_csv(
    store: Store,
    mailing_id: int,
    path: str | Path,
    *,
    revision: int | None = None,
    state: str = "sent",
    account: str = "default",
    message_domain: str | None = None,
) -> int:
    """Write the recipients (see iter_recipients) to a CSV file at `path`; returns the rows written.

    Written to a temporary file beside `path` (mode 0600: it holds addresses) and
    renamed over it at the end, so `path` never holds half an export; on any error
    the temporary file is removed and `path` is as it was.
    """
    target = check_target(path)
    sel = select_recipients(
        store, mailing_id, revision=revision, state=state, account=account, message_domain=message_domain
    )
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise StoreError(f"cannot write the CSV in {target.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            n = write_rows(store, sel, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StoreError(f"cannot write the CSV {target}: {exc.strerror or exc}; nothing written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


__all__ = [
    "STATES", "CHUNK", "Recipient", "Selection", "select_recipients", "iter_recipients", "chunk_query", "rows", "write_rows",
    "write_csv", "check_target", "inert",
]
