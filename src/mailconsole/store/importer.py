"""Creating a mailing from a recipients CSV.

Two streaming passes keep memory bounded for a million rows: the first validates
every row (nothing is written if any row is bad, unless skip_invalid), the
second expands the rows into the queue in batches while the mailing is visible
as "preparing" with its progress. An operator may delete it meanwhile; the
import notices at the next batch and stops.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from .. import templating
from . import audit, list_headers, revisions, senders
from .accounts import account_id
from .actor import Actor
from .batching import TimedBatches
from .connection import Store
from .errors import InvalidInput, Refused
from .mailings import DELETED, PAUSED, PLANNED, PREPARING, SENDING, SENT, purge_deleted
from .schema import mailings, messages, suppressions
from .schema import revisions as revisions_table

# An address as SMTP carries it without extensions (RFC 5321 4.1.2): a dot-atom
# local part, then a domain of letter-digit-hyphen labels or an address literal.
# Quoted local parts ("a b"@x) are refused: relays and mail readers treat them
# in as many ways as there are of them. ASCII only: the engine does not speak
# SMTPUTF8, so an internationalised address could never be sent.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LITERAL = r"\[(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]"
ADDRESS = re.compile(rf"(?:{_ATOM}(?:\.{_ATOM})*)@(?:{_LABEL}(?:\.{_LABEL})*|{_LITERAL})")
MAX_ADDRESS = 254  # RFC 5321's path limit (256) less the angle brackets
MAX_LOCAL_PART = 64
# List-Unsubscribe (RFC 2369): angle-bracketed URIs, separated by commas. The
# engine writes it as one header line, so it is bounded well below 998.
LIST_UNSUBSCRIBE = re.compile(r"\s*<([^<>]*)>\s*(?:,\s*<([^<>]*)>\s*)*")
_LIST_ITEM = re.compile(r"<([^<>]*)>")
_URI = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
MAX_LIST_UNSUBSCRIBE = 900
# Control characters a merge value may not hold: all but tab and the line breaks
# a body may carry (a line break is refused separately for fields in the subject).
CONTROL = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
BATCH = 5000
MAX_REPORTED = 5
# A recipients file that is not a regular file (a pipe, /dev/stdin) is copied to a
# private file first: the import reads the file more than once.
SPOOL_CHUNK = 1 << 20


def address_problem(value: str) -> str | None:
    """Why `value` cannot be sent to (or from), or None if it can."""
    if not value.isascii():
        return "is not ASCII (internationalised addresses are not supported; write the domain in its xn-- form)"
    if templating.has_line_break(value) or not ADDRESS.fullmatch(value):
        return "is not a valid address (expected name@domain)"
    if len(value) > MAX_ADDRESS or len(value.rpartition("@")[0]) > MAX_LOCAL_PART:
        return f"is too long for SMTP (at most {MAX_LOCAL_PART} characters before the @, {MAX_ADDRESS} in all)"
    return None


def valid_address(value: str) -> bool:
    return address_problem(value) is None


def normal_address(value: str) -> str:
    """The address as stored and compared: trimmed, the domain in lower case.

    Domains are case-insensitive (RFC 5321 2.4); the local part is kept as
    written and compared exactly, as the RFC says, since only the receiving
    server knows whether "Ann" and "ann" are one mailbox.
    """
    local, at, domain = value.strip().rpartition("@")
    return f"{local}{at}{domain.lower()}" if at else value.strip()


def list_unsubscribe_problem(value: str) -> str | None:
    """Why `value` is not a List-Unsubscribe header the engine can send, or None."""
    if templating.has_line_break(value):
        return "contains a line break; it goes into a mail header and must be one line"
    if not value.isascii():
        return "is not ASCII; write each URI percent-encoded"
    if len(value) > MAX_LIST_UNSUBSCRIBE:
        return f"is {len(value):,} characters; the limit is {MAX_LIST_UNSUBSCRIBE}"
    if not LIST_UNSUBSCRIBE.fullmatch(value):
        return "must be <mailto:…> and/or <https://…> URIs in angle brackets, separated by commas"
    for uri in _LIST_ITEM.findall(value):
        if not _URI.fullmatch(uri):
            return f"URI <{uri}> has characters a URI may not hold (spaces, quotes, controls)"
        scheme, _, rest = uri.partition(":")
        if scheme.lower() == "mailto":
            if not valid_address(rest.partition("?")[0]):
                return f"URI <{uri}> does not name a valid address"
        elif scheme.lower() in ("http", "https"):
            if not rest.startswith("//") or not rest[2:].split("/")[0].split("?")[0]:
                return f"URI <{uri}> names no host"
        else:
            return f"URI <{uri}> is neither mailto: nor http(s):"
    return None


@dataclass(frozen=True)
class CreateResult:
    mailing_id: int
    recipients: int
    skipped: int
    status: str
    suppressed: int = 0  # addresses on the account's suppression list: not imported


@dataclass
class _Source:
    path: Path
    fields: list[str]


def _open_csv(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each data row; the header is line 1."""
    try:
        handle = path.open("r", encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read recipients file {path}: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            end = 0
            for cells in reader:
                # A quoted cell may span lines: report the line the record starts on.
                start, end = end + 1, reader.line_num
                yield start, cells
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{path.name} is not UTF-8 (byte {exc.start} of a block near line {reader.line_num + 1}); "
                "save it as UTF-8 and retry"
            ) from None
        except OSError as exc:  # a file that opens but cannot be read (EIO)
            raise InvalidInput(f"cannot read recipients file {path} near line {reader.line_num + 1}: "
                               f"{exc.strerror or exc}") from None
        except csv.Error as exc:
            # Name the line the broken record starts on: an unterminated quote is only
            # noticed at the end of the file, a million lines later.
            read_to = f", read up to line {reader.line_num}" if reader.line_num > end + 1 else ""
            raise InvalidInput(f"{path.name} line {end + 1}: broken CSV ({exc}{read_to}); fix the file") from None


def read_header(path: Path) -> list[str]:
    rows = _open_csv(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise InvalidInput(f"{path.name} is empty; it needs a header row with an 'email' column") from None
    finally:
        rows.close()
    header = [h.strip() for h in header]
    # Spreadsheets export "Email" or "EMAIL"; the address column is the one we require.
    header = ["email" if h.lower() == "email" else h for h in header]
    if "email" not in header:
        raise InvalidInput(f"{path.name} has no 'email' column in its header row (found: {', '.join(header) or 'nothing'})")
    bad = [h for h in header if not h.isidentifier()]
    if bad:
        raise InvalidInput(f"{path.name}: column name '{bad[0]}' is not usable as a merge field (letters, digits, _)")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise InvalidInput(f"{path.name}: column '{sorted(dupes)[0]}' appears twice in the header row")
    return header


def _problem(header: list[str], line: int, cells: list[str], header_fields: set[str]) -> str | None:
    if len(cells) != len(header):
        return f"line {line}: {len(cells)} cells, the header has {len(header)}"
    row = dict(zip(header, cells))
    email = row["email"].strip()
    why = address_problem(email)
    if why:
        return f"line {line}: invalid address {email!r}" + ("" if why.startswith("is not a valid") else f": it {why}")
    for name in header_fields:
        if templating.has_line_break(row[name]):
            return f"line {line}: column '{name}' has a line break and is used in the subject"
    for name, value in row.items():
        control = CONTROL.search(value)
        if control:
            # A NUL is refused by mail servers; ESC and the like act on terminals and mail readers.
            return f"line {line}: column '{name}' has the control character \\x{ord(control.group()):02x}"
    return None


def _check_rows(path: Path, header: list[str], header_fields: set[str], skip_invalid: bool) -> tuple[int, int]:
    """First pass: count rows and find problems. Returns (good rows, bad rows)."""
    good = bad = 0
    problems: list[str] = []
    rows = _open_csv(path)
    next(rows)
    for line, cells in rows:
        if not cells:
            continue  # blank line
        p = _problem(header, line, cells, header_fields)
        if p:
            bad += 1
            if len(problems) < MAX_REPORTED:
                problems.append(p)
        else:
            good += 1
    if bad and not skip_invalid:
        more = f"; and {bad - 1} more bad row(s)" if bad > 1 else ""
        raise InvalidInput(f"{path.name} {problems[0]}{more}; nothing imported (fix the file or pass --skip-invalid)")
    return good, bad


def _sample_rows(path: Path, header: list[str], in_subject: set[str]) -> list[tuple[str, dict]]:
    """(email, fields) of the file's first good rows and a random sample of the rest (one streaming pass).

    What the template is rendered for before anything is stored (revisions.check_sample).
    """
    first: list[tuple[str, dict]] = []
    more: list[tuple[str, dict]] = []
    seen = 0
    rng = random.Random()
    rows = _open_csv(path)
    next(rows)
    for line, cells in rows:
        if not cells:
            continue
        if len(first) < revisions.SAMPLE_FIRST:
            if _problem(header, line, cells, in_subject) is None:
                first.append(_sample_item(header, cells))
            continue
        seen += 1  # reservoir sampling: each later row ends up in `more` with equal chance
        slot = len(more) if len(more) < revisions.SAMPLE_RANDOM else rng.randrange(seen)
        # Only a row that is kept is checked: the pass stays at the speed of the csv module.
        if slot < revisions.SAMPLE_RANDOM and _problem(header, line, cells, in_subject) is None:
            if slot == len(more):
                more.append(_sample_item(header, cells))
            else:
                more[slot] = _sample_item(header, cells)
    return first + more


def _sample_item(header: list[str], cells: list[str]) -> tuple[str, dict]:
    row = dict(zip(header, cells))
    return row.pop("email").strip(), row


def _check_header_value(what: str, value: str) -> None:
    if templating.has_line_break(value):
        raise InvalidInput(f"{what} contains a line break; it goes into a mail header and must be one line")


def check_sender(sender: str) -> tuple[str, str]:
    """(display name or "", address) of a sender the engine can send from, else InvalidInput naming it."""
    return senders.parse_mailbox(sender, "sender")


def check_reply_to(reply_to: str) -> str:
    """A Reply-To mailbox as stored (`Name <address>` or the address), else InvalidInput."""
    return senders.display(*senders.parse_mailbox(reply_to, "Reply-To"))


def create_mailing(store: Store, actor: Actor, *, recipients: Path, **options: Any) -> CreateResult:
    """Create a mailing and expand its recipients into the queue; returns its id.

    `options` are those of _create_mailing. A recipients file that is not a
    regular file (a pipe, /dev/stdin) is read once into a private copy first.
    """
    with _spooled(recipients) as path:
        return _create_mailing(store, actor, recipients=path, **options)


def _spooled_name(source: Path) -> str:
    # What the errors call the file: /dev/stdin is "stdin", /dev/fd/63 is "fd-63".
    name = source.name or "recipients"
    return ("stdin" if name == "0" else f"fd-{name}") if name.isdigit() else name


@contextmanager
def _spooled(source: Path) -> Iterator[Path]:
    """`source` itself if it is a regular file, else a 0600 copy in a private 0700 directory."""
    try:
        mode = source.stat().st_mode
    except OSError as exc:
        raise InvalidInput(f"cannot read recipients file {source}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"recipients file {source} is a directory; give a CSV file")
    if stat.S_ISREG(mode):
        yield source
        return
    with tempfile.TemporaryDirectory(prefix="mailconsole-") as tmp:  # mkdtemp: mode 0700
        copy = Path(tmp) / _spooled_name(source)
        try:
            fd = os.open(copy, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
                line = 1
                while chunk := src.read(SPOOL_CHUNK):
                    nul = chunk.find(b"\0")
                    if nul >= 0:
                        # A text file has none; without this, /dev/zero would fill the disk.
                        line += chunk.count(b"\n", 0, nul)
                        raise InvalidInput(f"recipients {source} line {line}: a NUL byte; it is not a CSV text file")
                    line += chunk.count(b"\n")
                    dst.write(chunk)
        except OSError as exc:
            raise InvalidInput(f"cannot read recipients file {source}: {exc.strerror or exc}") from None
        yield copy


def _create_mailing(
    store: Store,
    actor: Actor,
    *,
    name: str,
    sender: str,
    subject: str,
    text_body: str,
    html_body: str | None,
    recipients: Path,
    at: float | None = None,
    account: str = "default",
    skip_invalid: bool = False,
    list_unsubscribe: str | None = None,
    reply_to: str | None = None,
    list_id: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CreateResult:
    """Create a mailing from a regular recipients file (see create_mailing)."""
    _check_header_value("mailing name", name)
    sender_name, sender_address = check_sender(sender)
    reply_to = check_reply_to(reply_to) if reply_to is not None else None
    list_id = list_headers.normal_list_id(list_id) if list_id is not None else None
    if not name.strip():
        raise InvalidInput("mailing name is empty; pass --name")
    header = read_header(recipients)
    fields = [h for h in header if h != "email"]
    revisions.validate(subject, text_body, html_body, fields)
    if list_unsubscribe is not None:  # may use merge fields: checked against the file's columns
        list_headers.check_list_unsubscribe(list_unsubscribe, fields)
    in_subject = templating.names_used(subject) & set(fields)
    expected, bad = _check_rows(recipients, header, in_subject, skip_invalid)
    revisions.check_sample(subject, text_body, html_body, _sample_rows(recipients, header, in_subject))
    if expected == 0:
        what = "no valid recipients" if bad else "no recipients (only a header row)"
        raise InvalidInput(f"{recipients.name} has {what}; nothing to send")

    now = store.now()
    scheduled = now if at is None else at
    with store.write() as conn:
        acc = account_id(conn, account)
        mid = conn.execute(
            insert(mailings).values(
                account_id=acc, name=name, sender=sender_address, sender_name=sender_name or None,
                reply_to=reply_to, list_id=list_id, status=PREPARING,
                scheduled_at=scheduled, created_at=now, created_by=actor.user,
                fields=json.dumps(fields), expected=expected, list_unsubscribe=list_unsubscribe,
            )
        ).inserted_primary_key[0]
        revisions.add(conn, mid, subject, text_body, html_body, now, actor.user)

    try:
        imported, dupes, suppressed = _expand(store, mid, recipients, header, in_subject, scheduled, skip_invalid, batch_size, progress, expected)
    except BaseException:
        _abandon(store, mid)
        raise

    with store.write() as conn:
        status = conn.execute(select(mailings.c.status).where(mailings.c.id == mid)).scalar_one()
        if status != DELETED:
            # An operator may have paused it while it was prepared: it stays paused.
            final = PAUSED if status == PAUSED else PLANNED if scheduled > store.now() else SENDING
            if final == SENDING and imported == 0:
                final = SENT  # every recipient was suppressed: nothing to send
            conn.execute(update(mailings).where(mailings.c.id == mid).values(status=final, expected=imported))
            audit.record(
                conn, store.now(), actor, account, "create", mid,
                name=name, recipients=imported, skipped=bad + dupes, scheduled_at=scheduled, status=final,
                **({"suppressed": suppressed} if suppressed else {}),  # named only when some were
            )
    if status == DELETED:  # deleted after its last batch: its rows go now, not at the next purge
        _abandon(store, mid)
        raise Refused(f"mailing {mid} was deleted while it was being prepared; nothing will be sent")
    return CreateResult(mid, imported, bad + dupes, final, suppressed)


def _abandon(store: Store, mid: int) -> None:
    """A failed import leaves nothing behind.

    The half-built mailing is hidden first (one short transaction), its messages
    purged in batches, then its row and revision removed: it never got a
    'create' audit entry, so it never existed. A mailing an operator deleted
    meanwhile keeps its row, which the 'delete' audit entry names.
    """
    try:
        with store.write() as conn:
            status = conn.execute(select(mailings.c.status).where(mailings.c.id == mid)).scalar_one()
            conn.execute(update(mailings).where(mailings.c.id == mid).values(status=DELETED, deleted_at=store.now()))
        purge_deleted(store)
        if status != DELETED:
            with store.write() as conn:
                conn.execute(delete(messages).where(messages.c.mailing_id == mid))
                conn.execute(delete(revisions_table).where(revisions_table.c.mailing_id == mid))
                conn.execute(delete(mailings).where(mailings.c.id == mid))
    except Exception:
        pass  # the original error matters more; a leftover shows up as deleted


def _expand(
    store: Store, mid: int, path: Path, header: list[str], in_subject: set[str], due: float,
    skip_invalid: bool, batch_size: int | None, progress: Callable[[int, int], None] | None, expected: int,
) -> tuple[int, int, int]:
    imported = dupes = suppressed = 0
    batch: list[dict] = []
    lines: dict[str, int] = {}
    rows = _open_csv(path)
    next(rows)

    # Each batch is one short write transaction, sized by the time the previous ones
    # took (TimedBatches, ~10 ms) unless the caller fixed batch_size: 5000 rows held
    # the lock for 50-100 ms, and a stop waited behind each of them.
    batches = TimedBatches() if batch_size is None else TimedBatches(batch_size, low=batch_size, high=batch_size)

    def flush() -> None:
        nonlocal imported, dupes, batch, lines
        imported += batches.step(store, write_batch)
        batch, lines = [], {}
        if progress:
            progress(imported, expected)

    def write_batch(conn: Connection, _size: int) -> int:
        nonlocal batch, dupes, suppressed
        status, acc = conn.execute(select(mailings.c.status, mailings.c.account_id).where(mailings.c.id == mid)).one()
        if status == DELETED:
            raise Refused(f"mailing {mid} was deleted while it was being prepared; import stopped")
        existing = set(
            conn.execute(
                select(messages.c.email).where(messages.c.mailing_id == mid, messages.c.email.in_(list(lines)))
            ).scalars()
        )
        if existing:
            if not skip_invalid:
                first = min(existing, key=lambda e: lines[e])
                raise InvalidInput(
                    f"{path.name} line {lines[first]}: duplicate recipient {first!r} (already on an earlier line); "
                    "nothing imported (remove duplicates or pass --skip-invalid)"
                )
            batch = [b for b in batch if b["email"] not in existing]
            dupes += len(existing)
        blocked = set(conn.execute(select(suppressions.c.email).where(
            suppressions.c.account_id == acc, suppressions.c.email.in_([b["email"] for b in batch]))).scalars())
        if blocked:  # never sent to: not imported at all
            batch = [b for b in batch if b["email"] not in blocked]
            suppressed += len(blocked)
        if batch:
            conn.execute(insert(messages), batch)
        n = len(batch)
        conn.execute(
            update(mailings)
            .where(mailings.c.id == mid)
            .values(recipients=mailings.c.recipients + n, queued=mailings.c.queued + n)
        )
        return n

    for line, cells in rows:
        if not cells:
            continue
        problem = _problem(header, line, cells, in_subject)
        if problem:
            if not skip_invalid:
                # The first pass found no bad row, so the file changed in between
                # (still being written or copied): refuse rather than guess.
                raise InvalidInput(f"{path.name} changed while it was imported ({problem}); nothing imported, retry")
            continue  # counted by the first pass
        row = dict(zip(header, cells))
        email = normal_address(row.pop("email"))
        if email in lines:
            if not skip_invalid:
                raise InvalidInput(
                    f"{path.name} line {line}: duplicate recipient {email!r} (first on line {lines[email]}); "
                    "nothing imported (remove duplicates or pass --skip-invalid)"
                )
            dupes += 1
            continue
        lines[email] = line
        batch.append({"mailing_id": mid, "email": email, "fields": json.dumps(row), "state": "queued", "due_at": due})
        if len(batch) >= batches.size:
            flush()
    if batch:
        flush()
    return imported, dupes, suppressed
