"""The suppression list: addresses an account never sends to again.

An address lands here when it unsubscribed, bounced or complained. It is
skipped when a mailing is created (importer) and checked again in the claim
statement itself (queue.claim), so an address suppressed while a mailing sends
gets nothing claimed for it from that commit on: its queued message leaves the
queue as state 'suppressed', counted in the mailing's `suppressed` counter.
A message claimed just before the suppression is checked once more at the
final-dot gate and turned back (see MARK_KEY below).

Addresses are kept in their normal form (importer.normal_address: the domain
in lower case, the local part as written), as recipients are: the lookup is
the table's primary key (account, address).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Integer, String, bindparam, cast, delete, insert, select, update

from . import audit
from .accounts import account_id
from .actor import Actor
from .connection import Store
from .dot_fence import wait_for_allowed_dots
from .errors import InvalidInput
from .importer import CONTROL, MAX_REPORTED, _open_csv, _spooled, address_problem, normal_address, read_header
from .mailings import SENDING, SENT
from .schema import mailings, messages, meta, suppressions

MAX_REASON = 500
BATCH = 5000


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str | None
    created_at: float
    created_by: str

    def as_dict(self) -> dict:
        return {"email": self.email, "reason": self.reason, "created_at": self.created_at, "created_by": self.created_by}


@dataclass(frozen=True)
class ImportResult:
    added: int
    already: int  # suppressed before: left as they were


def _checked(address: str) -> str:
    why = address_problem(address.strip())
    if why:
        raise InvalidInput(f"address {address!r} {why}")
    return normal_address(address)


def _checked_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    control = CONTROL.search(reason) or next((c for c in reason if c in "\r\n"), None)
    if control:
        raise InvalidInput("reason has a control character or line break; give one line of text")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is {len(reason):,} characters; the limit is {MAX_REASON}")
    return reason.strip() or None


def add(store: Store, actor: Actor, address: str, reason: str | None = None, account: str = "default") -> bool:
    """Suppress `address` for the account; False if it already was (nothing changes then)."""
    email, reason = _checked(address), _checked_reason(reason)
    with store.write() as conn:
        acc = account_id(conn, account)
        if conn.execute(select(suppressions.c.email).where(suppressions.c.account_id == acc,
                                                           suppressions.c.email == email)).first():
            return False
        conn.execute(insert(suppressions).values(account_id=acc, email=email, reason=reason,
                                                 created_at=store.now(), created_by=actor.user))
        bump_mark(conn)
        audit.record(conn, store.now(), actor, account, "suppress", None, email=email, reason=reason)
    wait_for_allowed_dots(store)  # as for a stop: no dot to it allowed before is still on its way
    return True


def remove(store: Store, actor: Actor, address: str, account: str = "default") -> bool:
    """Send to `address` again (mailings made from now on; messages already suppressed stay so)."""
    email = normal_address(address)
    with store.write() as conn:
        acc = account_id(conn, account)
        gone = conn.execute(delete(suppressions).where(suppressions.c.account_id == acc, suppressions.c.email == email)
                            .returning(suppressions.c.reason)).first()
        if gone is None:
            return False
        audit.record(conn, store.now(), actor, account, "unsuppress", None, email=email, reason=gone[0])
    return True


def list_suppressions(store: Store, account: str = "default") -> list[Suppression]:
    with store.read() as conn:
        acc = account_id(conn, account)
        rows = conn.execute(
            select(suppressions.c.email, suppressions.c.reason, suppressions.c.created_at, suppressions.c.created_by)
            .where(suppressions.c.account_id == acc).order_by(suppressions.c.email)
        ).all()
    return [Suppression(*r) for r in rows]


# How many times suppressions were added, in the store's key/value table. The claim
# reads it with the suppressions it checks, and the final-dot gate with the stop
# state: a message claimed before a newer suppression is checked again before its
# dot (engine/runner.py), so an address suppressed mid-send gets nothing from then
# on, even a message already claimed. Removals need no mark: they only allow more.
MARK_KEY = "suppressions_added"


def read_mark(conn: Connection) -> int:
    return int(conn.execute(select(meta.c.value).where(meta.c.key == MARK_KEY)).scalar() or 0)


def bump_mark(conn: Connection) -> None:
    """In the transaction that adds suppressions: one primary-key row, so the write stays short."""
    if conn.execute(update(meta).where(meta.c.key == MARK_KEY)
                    .values(value=cast(cast(meta.c.value, Integer) + 1, String))).rowcount == 0:
        conn.execute(insert(meta).values(key=MARK_KEY, value="1"))


def is_suppressed(conn: Connection, account_id: int, email: str) -> bool:
    return conn.execute(select(suppressions.c.email).where(
        suppressions.c.account_id == account_id, suppressions.c.email == email)).first() is not None


def leave_queue(conn: Connection, picked: list[tuple[int, int]]) -> None:
    """Finish what the claim began for (message id, mailing id) pairs it found suppressed.

    The claim statement set them to 'suppressed' with its lease and attempt:
    those are undone (they never reached a server), and the counters move from
    queued to suppressed. A mailing left with nothing to send is sent.
    """
    conn.execute(
        update(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)))
        .values(lease_owner=None, lease_expires=None, attempts=messages.c.attempts - 1),
        {"ids": [mid for mid, _ in picked]},
    )
    per_mailing = Counter(mailing for _, mailing in picked)
    for mailing, n in sorted(per_mailing.items()):  # in id order, as every writer of mailings
        conn.execute(update(mailings).where(mailings.c.id == mailing)
                     .values(queued=mailings.c.queued - n, suppressed=mailings.c.suppressed + n))
    conn.execute(
        update(mailings)
        .where(mailings.c.id.in_(list(per_mailing)), mailings.c.status == SENDING,
               mailings.c.queued == 0, mailings.c.claimed == 0)
        .values(status=SENT)
    )


def _rows(path: Path, header: list[str]) -> Iterator[tuple[int, str, str | None]]:
    rows = _open_csv(path)
    next(rows)
    for line, cells in rows:
        if not cells:
            continue
        if len(cells) != len(header):
            raise InvalidInput(f"{path.name} line {line}: {len(cells)} cells, the header has {len(header)}; nothing imported")
        row = dict(zip(header, cells))
        yield line, row["email"], row.get("reason") or None


def import_csv(store: Store, actor: Actor, path: Path, reason: str | None = None, account: str = "default") -> ImportResult:
    """Suppress every address of a CSV with an `email` column (and optionally `reason`).

    Every row is checked first: one bad address refuses the file, nothing added.
    Then the addresses go in in batches, each its own short transaction.
    """
    reason = _checked_reason(reason)
    with _spooled(path) as source:
        header = read_header(source)
        problems = []
        for line, email, own in _rows(source, header):
            why = address_problem(email.strip())
            if why is None and own is not None:
                try:
                    _checked_reason(own)
                except InvalidInput as exc:
                    why = str(exc)
            if why and len(problems) < MAX_REPORTED:
                problems.append(f"line {line}: {email!r} {why}")
        if problems:
            raise InvalidInput(f"{source.name} {problems[0]}; nothing imported (fix the file)")
        added = already = 0
        batch: dict[str, str | None] = {}

        def flush() -> None:
            nonlocal added, already
            with store.write() as conn:
                acc = account_id(conn, account)
                have = set(conn.execute(select(suppressions.c.email).where(
                    suppressions.c.account_id == acc, suppressions.c.email.in_(list(batch)))).scalars())
                new = [{"account_id": acc, "email": e, "reason": r, "created_at": store.now(), "created_by": actor.user}
                       for e, r in batch.items() if e not in have]
                if new:
                    conn.execute(insert(suppressions), new)
                    bump_mark(conn)
                audit.record(conn, store.now(), actor, account, "suppress-import", None,
                             file=source.name, added=len(new), already=len(have), reason=reason)
            added += len(new)
            already += len(have)
            batch.clear()

        for _line, email, own in _rows(source, header):
            normal = normal_address(email)
            if normal in batch:
                continue  # twice in the file: once is enough
            batch[normal] = (own.strip() if own else None) or reason
            if len(batch) >= BATCH:
                flush()
        if batch:
            flush()
    if added:
        wait_for_allowed_dots(store)
    return ImportResult(added, already)
