"""Mailings: listing with their counters, pause, delete, requeue (suspended or failed), reschedule."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, case, delete, func, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from . import audit, senders
from .accounts import account_id
from .actor import Actor
from .batching import TimedBatches
from .connection import Store
from .dot_fence import wait_for_allowed_dots
from .errors import NotFound, Refused
from .retry import OnWait, until_applied
from .schema import AT_RELAY_SQL, mailings, messages, revisions, state_is

# Statuses, in the order a mailing usually passes them.
PREPARING, PLANNED, SENDING, PAUSED, SENT, DELETED = "preparing", "planned", "sending", "paused", "sent", "deleted"
# A finished mailing of which not one message went out and some failed (a template
# that fails for everyone, a relay that refuses the sender): "sent" would hide it.
# One that partly failed stays "sent", with its failed count.
FAILED = "failed"
FINISHED = (SENT, FAILED)


def finished_status() -> ColumnElement:
    """What a mailing with nothing left to send becomes, as SQL over its own counters."""
    return case((and_(mailings.c.sent == 0, mailings.c.failed > 0), FAILED), else_=SENT)


def _finished(m) -> str:  # type: ignore[no-untyped-def]
    return FAILED if m.sent == 0 and m.failed > 0 else SENT


@dataclass(frozen=True)
class Mailing:
    id: int
    name: str
    sender: str
    status: str
    scheduled_at: float
    created_at: float
    created_by: str
    fields: list[str]
    expected: int
    recipients: int
    queued: int
    in_flight: int
    sent: int
    failed: int
    suspended: int
    recovered: int
    # Schema 3. `sender` is the bare address (the envelope sender).
    sender_name: str | None = None
    reply_to: str | None = None
    list_id: str | None = None  # the mailing's own; the account's default applies when None
    list_unsubscribe: str | None = None
    suppressed: int = 0  # left the queue at claim time: the address was suppressed meanwhile

    @property
    def unsent(self) -> int:
        return self.queued + self.in_flight + self.suspended

    @property
    def sender_display(self) -> str:
        """The From mailbox as an operator writes it: `Name <address>` or the address."""
        return senders.display(self.sender_name, self.sender)

    def as_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "sender": self.sender, "status": self.status,
            "scheduled_at": self.scheduled_at, "created_at": self.created_at,
            "recipients": self.recipients, "expected": self.expected, "queued": self.queued,
            "in_flight": self.in_flight, "sent": self.sent, "failed": self.failed,
            "suspended": self.suspended, "recovered": self.recovered,
            "from": self.sender_display, "sender_name": self.sender_name, "reply_to": self.reply_to,
            "list_id": self.list_id, "list_unsubscribe": self.list_unsubscribe, "suppressed": self.suppressed,
        }


def _mailing(r) -> Mailing:  # type: ignore[no-untyped-def]
    return Mailing(
        r.id, r.name, r.sender, r.status, r.scheduled_at, r.created_at, r.created_by,
        json.loads(r.fields), r.expected, r.recipients, r.queued, r.claimed, r.sent, r.failed,
        r.suspended, r.recovered, r.sender_name, r.reply_to, r.list_id, r.list_unsubscribe, r.suppressed,
    )


def get_live(conn: Connection, mailing_id: int, account: str) -> "object":
    """The mailing's row, or NotFound if it does not exist, was deleted, or is another account's."""
    acc = account_id(conn, account)
    r = conn.execute(
        select(mailings).where(mailings.c.id == mailing_id, mailings.c.account_id == acc)
    ).first()
    if r is None or r.status == DELETED:
        gone = "was deleted" if r is not None else "does not exist"
        raise NotFound(f"mailing {mailing_id} {gone}; list mailings with `mailconsole mailings --planned`")
    return r


def get_mailing(store: Store, mailing_id: int, account: str = "default") -> Mailing:
    with store.read() as conn:
        return _mailing(get_live(conn, mailing_id, account))


def list_mailings(store: Store, account: str = "default", *, planned: bool = False, only_planned: bool = False) -> list[Mailing]:
    """The analytics list from maintained counters (never counts messages).

    Planned mailings are included only when asked (the "show planned also" toggle).
    """
    with store.read() as conn:
        acc = account_id(conn, account)
        query = select(mailings).where(mailings.c.account_id == acc, mailings.c.status != DELETED)
        if only_planned:
            query = query.where(mailings.c.status == PLANNED).order_by(mailings.c.scheduled_at, mailings.c.id)
        else:
            if not planned:
                query = query.where(mailings.c.status != PLANNED)
            query = query.order_by(mailings.c.id.desc())
        return [_mailing(r) for r in conn.execute(query)]


def revision_counts(store: Store, mailing_id: int) -> list[tuple[int, int]]:
    """(revision number, messages sent with it), oldest first."""
    with store.read() as conn:
        rows = conn.execute(
            select(revisions.c.number, revisions.c.sent)
            .where(revisions.c.mailing_id == mailing_id)
            .order_by(revisions.c.number)
        ).all()
    return [(r[0], r[1]) for r in rows]


def pause(store: Store, actor: Actor, mailing_id: int, account: str = "default", *,
          on_wait: OnWait | None = None, details: dict | None = None,
          on_paused: Callable[[Connection], None] | None = None) -> Mailing:
    """Stop one mailing; its claimed messages are turned back at the final-dot gate.

    Like the stop, never refused because the store is busy: it waits for the
    write lock for as long as it takes (on_wait reports; raising from it gives up).
    `details` go into the audit entry; `on_paused` runs inside the transaction
    only when this call is the one that paused it (an automatic pause records
    itself there, once however many engines ask: store/auto_pause.py).
    """
    def attempt(patience: float) -> Mailing:
        with store.write(durable=True, patience=patience) as conn:
            store.backend.exclude_claims(conn, account_id(conn, account))  # as a stop: ordered against claims
            m = get_live(conn, mailing_id, account)
            # Finished here, but what a relay still queues of it can be held there
            # (the relay agent holds the messages of paused mailings).
            if m.status in FINISHED and not at_relay(conn, mailing_id):
                raise Refused(f"mailing {mailing_id} is already {m.status}; nothing to pause")
            if m.status != PAUSED:
                conn.execute(update(mailings).where(mailings.c.id == mailing_id).values(status=PAUSED))
                audit.record(conn, store.now(), actor, account, "pause", mailing_id, previous=m.status, **(details or {}))
                if on_paused is not None:
                    on_paused(conn)
            return _mailing(conn.execute(select(mailings).where(mailings.c.id == mailing_id)).one())

    result = until_applied(attempt, on_wait)
    wait_for_allowed_dots(store)  # as for a stop: no dot of it allowed before is still on its way
    return result


def _running_status(m, now: float) -> str:  # type: ignore[no-untyped-def]
    if m.recipients < m.expected:
        # Paused while its import was still running: the importer decides
        # planned/sending when it finishes, exactly as if it had not been paused.
        return PREPARING
    if m.scheduled_at > now:
        return PLANNED
    if m.queued == 0 and m.claimed == 0:
        return _finished(m)
    return SENDING


def unpause(store: Store, actor: Actor, mailing_id: int, account: str = "default") -> Mailing:
    with store.write() as conn:
        m = get_live(conn, mailing_id, account)
        if m.status != PAUSED:
            raise Refused(f"mailing {mailing_id} is not paused (it is {m.status})")
        status = _running_status(m, store.now())
        conn.execute(update(mailings).where(mailings.c.id == mailing_id).values(status=status))
        audit.record(conn, store.now(), actor, account, "unpause", mailing_id, status=status)
        return _mailing(conn.execute(select(mailings).where(mailings.c.id == mailing_id)).one())


def at_relay(conn: Connection, mailing_id: int) -> int:
    """How many of its messages wait in a relay's queue (queued or held there: store/relays.py)."""
    return conn.execute(select(func.count()).select_from(messages).where(
        messages.c.mailing_id == mailing_id, text(AT_RELAY_SQL))).scalar_one()


def waiting_at_relay(store: Store, mailing_id: int) -> int:
    with store.read() as conn:
        return at_relay(conn, mailing_id)


@dataclass(frozen=True)
class DeleteSummary:
    mailing_id: int
    name: str
    status: str
    sent: int
    dropped: int  # queued + in flight + suspended: what will never be sent
    recipients: int = 0


def delete_preview(store: Store, mailing_id: int, account: str = "default") -> DeleteSummary:
    m = get_mailing(store, mailing_id, account)
    return DeleteSummary(m.id, m.name, m.status, m.sent, m.unsent, m.recipients)


def delete_mailing(store: Store, actor: Actor, mailing_id: int, account: str = "default", *,
                   on_wait: OnWait | None = None) -> DeleteSummary:
    """Remove a mailing from the queue and from every list, atomically, in any status.

    The mailing is marked deleted in one transaction: from that commit no claim
    picks its messages and the final-dot gate turns back those already claimed.
    The unsent rows are purged afterwards in short steps (purge_deleted) so a huge
    mailing does not hold the write lock for seconds. Like the stop, never
    refused because the store is busy (on_wait reports each failed try).
    """
    def attempt(patience: float) -> DeleteSummary:
        with store.write(durable=True, patience=patience) as conn:
            store.backend.exclude_claims(conn, account_id(conn, account))  # as a stop: ordered against claims
            m = get_live(conn, mailing_id, account)
            summary = DeleteSummary(m.id, m.name, m.status, m.sent, m.queued + m.claimed + m.suspended, m.recipients)
            conn.execute(
                update(mailings).where(mailings.c.id == mailing_id).values(status=DELETED, deleted_at=store.now())
            )
            audit.record(
                conn, store.now(), actor, account, "delete", mailing_id,
                name=m.name, status=m.status, recipients=m.recipients, sent=m.sent,
                dropped=summary.dropped, failed=m.failed,
            )
            return summary

    summary = until_applied(attempt, on_wait)
    wait_for_allowed_dots(store)  # as for a stop: no dot of it allowed before is still on its way
    return summary


_purge_batches: "weakref.WeakKeyDictionary[Store, TimedBatches]" = weakref.WeakKeyDictionary()


def purge_deleted(store: Store, batch: int | None = None, max_batches: int | None = None) -> int:
    """Remove unsent messages of deleted mailings, one short transaction at a time.

    Each transaction's size follows the time the previous ones took (TimedBatches,
    ~10 ms); `batch` fixes the size instead (tests). Deleting a million rows in
    5000-row batches held the lock ~80 ms per batch.
    """
    if batch is not None:
        batches = TimedBatches(batch, low=batch, high=batch)
    else:
        # Kept per store: an engine purges one batch per maintenance round, and each
        # round should start from the size the previous ones found, not from scratch.
        batches = _purge_batches.setdefault(store, TimedBatches())
    removed = 0
    done = 0

    def step(conn: Connection, size: int) -> int:
        ids = conn.execute(
            select(messages.c.id)
            .where(
                messages.c.mailing_id.in_(select(mailings.c.id).where(mailings.c.status == DELETED)),
                state_is("queued", "suspended"),
            )
            .limit(size)
        ).scalars().all()
        if not ids:
            return 0
        gone = conn.execute(
            delete(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)))
            .returning(messages.c.mailing_id, messages.c.state),
            {"ids": ids},
        ).all()
        # Keep the deleted mailing's counters equal to the rows it still has.
        per: dict[tuple[int, str], int] = {}
        for mid, state in gone:
            per[(mid, state)] = per.get((mid, state), 0) + 1
        for (mid, state), n in per.items():
            col = mailings.c[state]
            conn.execute(update(mailings).where(mailings.c.id == mid).values({state: col - n}))
        return len(ids)

    while max_batches is None or done < max_batches:
        n = batches.step(store, step)
        if not n:
            break
        removed += n
        done += 1
    return removed


def requeue_suspended(store: Store, actor: Actor, mailing_id: int, account: str = "default") -> int:
    """Put a mailing's suspended messages back in the queue, due now."""
    return _requeue(store, actor, mailing_id, account, "suspended", {})


def requeue_failed(
    store: Store, actor: Actor, mailing_id: int, account: str = "default", *, batch: int | None = None
) -> int:
    """Put a mailing's failed messages back in the queue, due now, as if never tried.

    For after a correction (a template that failed for some recipients, a relay
    that refused for a while). Every failed message, whatever its kind: older
    releases left fail_kind empty, and those are exactly the ones waiting.
    """
    with store.read() as conn:
        kinds = {
            (kind or "unknown"): n
            for kind, n in conn.execute(
                select(messages.c.fail_kind, func.count())
                .where(messages.c.mailing_id == mailing_id, state_is("failed"))
                .group_by(messages.c.fail_kind)
            )
        }
    reset = {"attempts": 0, "last_error": None, "fail_kind": None}
    return _requeue(store, actor, mailing_id, account, "failed", reset, batch=batch, failed=True, kinds=kinds)


def _requeue(
    store: Store, actor: Actor, mailing_id: int, account: str, state: str, reset: dict,
    *, batch: int | None = None, **details: object,
) -> int:
    """Move a mailing's messages in `state` (a counter of the same name) back to queued, due now.

    In short steps (TimedBatches), each one complete in itself (rows and counters
    move together): requeueing a million messages in one transaction held the
    write lock for seconds. The first step records the one audit entry and makes
    a finished mailing sending again (a paused or planned one stays so); if the
    command is interrupted, the rest stays where it was and running it again
    requeues them. Refused for a deleted mailing, and when there is nothing to requeue.
    """
    now = store.now()
    batches = TimedBatches() if batch is None else TimedBatches(batch, low=batch, high=batch)
    total = 0
    counter = getattr(mailings.c, state)

    def step(conn: Connection, size: int) -> int:
        m = get_live(conn, mailing_id, account)  # deleted meanwhile: NotFound, the rest stays
        pick = select(messages.c.id).where(
            and_(messages.c.mailing_id == mailing_id, state_is(state))
        ).limit(size)
        n = conn.execute(
            update(messages).where(messages.c.id.in_(pick.scalar_subquery()))
            .values(state="queued", due_at=now, **reset)
        ).rowcount
        if n == 0:
            if total == 0:
                raise Refused(f"mailing {mailing_id} has no {state} messages to requeue")
            return 0
        values: dict = {"queued": mailings.c.queued + n, state: counter - n}
        if m.status in FINISHED:
            values["status"] = SENDING
        conn.execute(update(mailings).where(mailings.c.id == mailing_id).values(**values))
        if total == 0:
            audit.record(conn, now, actor, account, "requeue", mailing_id, requeued=getattr(m, state), **details)
        return n

    while True:
        size = batches.size
        n = batches.step(store, step)
        total += n
        if n < size:
            return total


def reschedule(store: Store, actor: Actor, mailing_id: int, at: float, account: str = "default") -> Mailing:
    """Move a planned mailing to another time (its messages become due then).

    The mailing's time moves in one short transaction; its messages' due times
    follow in short steps (TimedBatches): one statement over a million rows held
    the write lock for seconds. The order is what keeps it correct: a message is
    claimed only once its mailing is sending *and* it is due, and the mailing
    starts sending only at its (new) time, so no message goes out before the new
    time; at worst one not yet moved waits for its step, a few seconds at most.
    If the command is interrupted, running it again moves the rest.
    """
    with store.write() as conn:
        m = get_live(conn, mailing_id, account)
        if m.recipients < m.expected:
            # Its remaining rows would still be imported with the old due time.
            raise Refused(f"mailing {mailing_id} is still being prepared; reschedule it once its import has finished")
        if m.status not in (PLANNED, PAUSED) or m.sent or m.claimed:
            raise Refused(f"mailing {mailing_id} is {m.status} and has started; only planned mailings can be rescheduled")
        now = store.now()
        values: dict = {"scheduled_at": at}
        if m.status == PLANNED and at <= now:
            values["status"] = SENDING if m.queued else _finished(m)  # everything suspended: nothing to send
        conn.execute(update(mailings).where(mailings.c.id == mailing_id).values(**values))
        audit.record(conn, now, actor, account, "reschedule", mailing_id, previous=m.scheduled_at, scheduled_at=at)
    batches = TimedBatches()
    # Rows already moved (due exactly `at`) are in neither range, so each step reads
    # only rows still to move (ix_messages_claim: mailing, state, due).
    for still in (messages.c.due_at < at, messages.c.due_at > at):
        def step(conn: Connection, size: int, still=still) -> int:  # type: ignore[no-untyped-def]
            pick = select(messages.c.id).where(
                messages.c.mailing_id == mailing_id, state_is("queued"), still
            ).limit(size)
            return conn.execute(
                update(messages).where(messages.c.id.in_(pick.scalar_subquery())).values(due_at=at)
            ).rowcount

        while True:
            size = batches.size
            if batches.step(store, step) < size:
                break
    return get_mailing(store, mailing_id, account)
