"""The message queue as the engine sees it: claim, record, release, leases.

Every state change moves the per-mailing counters in the same transaction, so
the analytics never need to count messages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, and_, bindparam, case, exists, func, or_, select, update

from . import relay_reply, stop_intent, suppressions
from .connection import Store
from .identity import read_store_id
from .mailings import PLANNED, SENDING, finished_status
from .schema import accounts, mailings, messages, revisions, state_is
from .schema import suppressions as suppressions_table


# NamedTuples, not frozen dataclasses: the engine makes two of these per message,
# and a frozen dataclass costs ~1 µs to create against ~0.25 µs.
class Claimed(NamedTuple):
    id: int
    mailing_id: int
    email: str
    fields: str  # JSON object of merge fields
    attempts: int
    # The suppression mark its claim checked against (suppressions.read_mark): a newer
    # mark at the final-dot gate means its address must be checked again there.
    suppressions_seen: int = 0


class Outcome(NamedTuple):
    """What happened to one claimed message.

    kind: "sent", "failed" (final, with error), "retry" (back to the queue at
    retry_at, with error), or "release" (never reached the server's dot: back to
    the queue as it was, attempt not counted).
    """

    message_id: int
    mailing_id: int
    kind: str
    revision_id: int | None = None
    error: str | None = None
    retry_at: float | None = None
    # The dot was written but no reply came (connection lost, timeout, shutdown):
    # the server may have taken the message, so a later send may be a duplicate.
    possibly_delivered: bool = False
    # For "failed": why (messages.fail_kind: "template", "address" or "smtp").
    fail_kind: str | None = None
    # For "sent" through a relay: its reply to the dot, as it came (parsed for the
    # relay's queue id only when recorded: see store/relay_reply.py).
    relay_reply: str | None = None


@dataclass(frozen=True)
class Control:
    """The stop state that the final-dot gate reads."""

    generations: dict[int, int]  # account id -> stop generation
    stopped_accounts: frozenset[int]
    mailing_status: dict[int, tuple[str, int]]  # mailing id -> (status, account id)
    suppressions: int = 0  # the suppression mark (suppressions.read_mark) of the same read

    def account_of(self, mailing_id: int) -> int | None:
        status = self.mailing_status.get(mailing_id)
        return status[1] if status is not None else None

    def may_send(self, mailing_id: int) -> bool:
        status = self.mailing_status.get(mailing_id)
        return status is not None and status[0] == SENDING and status[1] not in self.stopped_accounts


def promote_due(store: Store) -> int:
    """Planned mailings whose time has come start sending.

    One whose every message was suspended meanwhile (a long stop) has nothing
    to send: it is finished at once (sent, or failed) instead of sending forever.
    """
    nothing_left = and_(mailings.c.queued == 0, mailings.c.claimed == 0)
    with store.write() as conn:
        return conn.execute(
            update(mailings)
            .where(mailings.c.status == PLANNED, mailings.c.scheduled_at <= store.now())
            .values(status=case((nothing_left, finished_status()), else_=SENDING))
        ).rowcount


def _sendable_mailings(intents: Sequence[tuple[int, int | None]] = ()):  # type: ignore[no-untyped-def]
    query = (
        select(mailings.c.id)
        .join(accounts, accounts.c.id == mailings.c.account_id)
        .where(mailings.c.status == SENDING, accounts.c.stopped.is_(False))
    )
    for acc, generation in intents:
        # A stop intent not yet spent holds its account (store/stop_intent.py): the gate
        # would turn every such claim back; better not to claim it at all.
        held = accounts.c.id != acc
        query = query.where(held if generation is None else or_(held, accounts.c.generation >= generation))
    return query


# A picked message whose address the mailing's account has suppressed leaves the
# queue in the claim itself: one primary-key lookup per picked row (mailings by
# id, suppressions by (account, address)), no scan.
_CLAIMED_OR_SUPPRESSED = case(
    (
        exists().where(
            mailings.c.id == messages.c.mailing_id,
            suppressions_table.c.account_id == mailings.c.account_id,
            suppressions_table.c.email == messages.c.email,
        ),
        "suppressed",
    ),
    else_="claimed",
)


def claim(store: Store, owner: str, limit: int, lease_seconds: float) -> list[Claimed]:
    """Claim up to `limit` due messages in one statement.

    The statement itself requires the account not stopped and the mailing
    sending, and the backend orders it against every stop (BEGIN IMMEDIATE on
    SQLite, advisory locks on PostgreSQL: see docs/scale-out.md), so a claim
    that commits after a stop finds nothing. It is ordered against every
    suppression the same way: a message whose address is suppressed is not
    claimed but moved to 'suppressed' (see store/suppressions.py).
    """
    now = store.now()
    backend = store.backend
    intents = stop_intent.held(stop_intent.intent_dir(store))
    with store.write() as conn:
        sendable = _sendable_mailings(intents)
        allowed = backend.claim_guard(conn)  # orders this claim against every stop (store/backends/)
        # Before the claim statement: where each statement has its own snapshot, the
        # statement sees every suppression up to this mark at least (docs/scale-out.md).
        mark = suppressions.read_mark(conn)
        if allowed is not None:
            sendable = sendable.where(accounts.c.id.in_(allowed))
        pick = (
            select(messages.c.id)
            .where(messages.c.mailing_id.in_(sendable), state_is("queued"), messages.c.due_at <= now)
            .limit(limit)
        )
        stmt = (
            update(messages)
            .where(messages.c.id.in_(backend.pick(pick)))
            .values(state=_CLAIMED_OR_SUPPRESSED, lease_owner=owner, lease_expires=now + lease_seconds,
                    attempts=messages.c.attempts + 1)
            .returning(messages.c.id, messages.c.mailing_id, messages.c.email, messages.c.fields, messages.c.attempts,
                       messages.c.state)
        )
        # By position: reading Row attributes by name costs ~3 µs a row, thousands a second.
        rows = conn.execute(stmt).all()  # every row fetched before COMMIT
        per_mailing: dict[int, int] = defaultdict(int)
        # In id order (the order they were queued): RETURNING promises none on PostgreSQL.
        claimed = sorted(r[:5] for r in rows if r[5] == "claimed")
        for r in claimed:
            per_mailing[r[1]] += 1
        for mid, n in sorted(per_mailing.items()):  # in id order: concurrent claims never deadlock on rows
            conn.execute(
                update(mailings).where(mailings.c.id == mid).values(queued=mailings.c.queued - n, claimed=mailings.c.claimed + n)
            )
        if len(claimed) < len(rows):
            suppressions.leave_queue(conn, [(r[0], r[1]) for r in rows if r[5] != "claimed"])
    return [Claimed(*r, mark) for r in claimed]


def _apply(conn: Connection, owner: str, ids: list[int], values: dict) -> dict[int, int]:
    """Move messages this engine still holds; returns how many moved per mailing.

    The mailing comes from the rows themselves (RETURNING), not from the caller,
    so the counters follow the messages that really moved.
    """
    if not ids:
        return {}
    stmt = (
        update(messages)
        # An expanding parameter rather than in_(ids): in_() coerces every id of a
        # 500-message batch into a literal each time the statement is built.
        # `|| ''` keeps SQLite on the primary key: on the state it would walk every
        # claimed message (thousands per engine) to update a batch of them.
        .where(messages.c.id.in_(bindparam("ids", expanding=True)), (messages.c.state + "") == "claimed",
               messages.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires=None, **values)
        .returning(messages.c.mailing_id)
    )
    moved: dict[int, int] = defaultdict(int)
    for (mid,) in conn.execute(stmt, {"ids": ids}):
        moved[mid] += 1
    return moved


def _merge(total: dict[int, int], part: dict[int, int]) -> None:
    for mid, n in part.items():
        total[mid] = total.get(mid, 0) + n


# Outcome kind -> the counter its messages move to (from `claimed`).
_COUNTER = {"sent": "sent", "failed": "failed", "retry": "queued", "release": "queued"}


def record(store: Store, owner: str, outcomes: Iterable[Outcome], *, relay: str | None = None) -> None:
    """Record a batch of outcomes; messages whose lease this engine lost are left alone.

    `relay`: the host:port the engine hands messages to; a sent outcome's reply
    to the dot then records where the message waits (the relay's queue id).
    """
    now = store.now()
    groups: dict[tuple, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.kind not in _COUNTER:
            raise ValueError(f"unknown outcome {o.kind!r}")
        groups[(o.kind, o.revision_id)].append(o)
    if not groups:
        return
    # Every counter change is summed first and written once per row, mailings then
    # revisions, each in id order: the lock order of every writer of these rows
    # (claims, pauses, relays.py), so two engines' records never deadlock.
    deltas: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))  # mailing -> column -> change
    sent_per_revision: dict[int, int] = defaultdict(int)
    with store.write() as conn:
        for (kind, rid), items in groups.items():
            moved: dict[int, int] = {}
            if kind == "sent":
                moved = _apply(conn, owner, [o.message_id for o in items],
                               {"state": "sent", "sent_at": now, "revision_id": rid, "last_error": None, "fail_kind": None})
                n = sum(moved.values())
                if n and rid is not None:
                    sent_per_revision[rid] += n
                if n and relay is not None:
                    _record_relay(conn, relay, now, items)
            elif kind in ("failed", "retry"):
                for o in items:
                    values = (
                        {"state": "failed", "fail_kind": o.fail_kind}
                        if kind == "failed"
                        else {"state": "queued", "due_at": o.retry_at or now}
                    )
                    if o.possibly_delivered:
                        values["recovered"] = messages.c.recovered + 1
                    one = _apply(conn, owner, [o.message_id], {**values, "last_error": o.error})
                    _merge(moved, one)
                    if o.possibly_delivered:  # a message possibly delivered already (see Outcome)
                        for mid, n in one.items():
                            deltas[mid]["recovered"] += n
            else:  # release: never reached the dot, so the attempt does not count
                moved = _apply(conn, owner, [o.message_id for o in items],
                               {"state": "queued", "attempts": messages.c.attempts - 1})
            for mid, n in moved.items():
                deltas[mid]["claimed"] -= n
                deltas[mid][_COUNTER[kind]] += n
        for mid, change in sorted(deltas.items()):
            conn.execute(update(mailings).where(mailings.c.id == mid)
                         .values({col: getattr(mailings.c, col) + n for col, n in sorted(change.items()) if n}))
        for rid, n in sorted(sent_per_revision.items()):
            conn.execute(update(revisions).where(revisions.c.id == rid).values(sent=revisions.c.sent + n))
        if deltas:
            _finish(conn, set(deltas))


# One statement for a whole batch (executemany): each message its own queue id.
_RELAYED = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"), messages.c.state == "sent")
    .values(relay=bindparam("b_relay"), relay_queue_id=bindparam("b_queue_id"), relay_state=bindparam("b_state"),
            relay_at=bindparam("b_at"), relay_note=bindparam("b_note"))
)


def _record_relay(conn: Connection, relay: str, now: float, items: list[Outcome]) -> None:
    """Where each message handed to the relay waits: 'queued' under its queue id, or
    no state (nothing to follow it by) with the reply kept."""
    rows = []
    # A relay that names no queue id usually gives every message the same reply
    # ("250 2.0.0 Ok"): those share one UPDATE instead of a statement each.
    same_reply: dict[str, list[int]] = defaultdict(list)
    for o in items:
        if o.relay_reply is None:
            continue
        queue_id, raw = relay_reply.parse(o.relay_reply)
        if queue_id is None:
            same_reply[raw or ""].append(o.message_id)
            continue
        rows.append({"b_id": o.message_id, "b_relay": relay, "b_queue_id": queue_id,
                     "b_state": "queued", "b_at": now, "b_note": raw})
    for raw, ids in same_reply.items():
        conn.execute(
            # `|| ''`: on the primary key, as _apply (not the state indexes).
            update(messages).where(messages.c.id.in_(bindparam("ids", expanding=True)), (messages.c.state + "") == "sent")
            .values(relay=relay, relay_queue_id=None, relay_state=None, relay_at=now, relay_note=raw),
            {"ids": ids},
        )
    if not rows:
        return
    compiled = _RELAYED.compile(dialect=conn.dialect)
    if compiled.positional:
        # Straight to the driver's executemany: SQLAlchemy's per-row parameter
        # processing cost more than the UPDATE itself (about 5 us a message).
        order = compiled.positiontup or ()
        fixed = compiled.params  # the statement's own values ('sent')
        conn.exec_driver_sql(str(compiled), [tuple(r[k] if k in r else fixed[k] for k in order) for r in rows])
    else:
        conn.execute(_RELAYED, rows)


def _finish(conn: Connection, mailing_ids: set[int]) -> None:
    """A sending mailing with nothing queued or in flight is finished: sent, or failed
    if not one of its messages went out (see mailings.finished_status)."""
    conn.execute(
        update(mailings)
        .where(
            mailings.c.id.in_(mailing_ids),
            mailings.c.status == SENDING,
            mailings.c.queued == 0,
            mailings.c.claimed == 0,
        )
        .values(status=finished_status())
    )


def release_all(store: Store, owner: str) -> int:
    """Return every message this engine still holds (graceful shutdown)."""
    return _requeue_claims(store, messages.c.lease_owner == owner, recovered=False)


def expire_leases(store: Store) -> int:
    """Return claims whose lease ran out (their engine died) to the queue.

    Each may have passed the final-dot gate before the crash, so it is counted
    as recovered: a possible duplicate.
    """
    return _requeue_claims(store, messages.c.lease_expires < store.now(), recovered=True)


def _requeue_claims(store: Store, which, recovered: bool) -> int:  # type: ignore[no-untyped-def]
    values: dict = {"state": "queued", "lease_owner": None, "lease_expires": None}
    if recovered:
        values["recovered"] = messages.c.recovered + 1
    else:
        values["attempts"] = messages.c.attempts - 1
    with store.write() as conn:
        rows = conn.execute(
            update(messages).where(state_is("claimed"), which).values(**values).returning(messages.c.mailing_id)
        ).all()
        per_mailing: dict[int, int] = defaultdict(int)
        for (mid,) in rows:
            per_mailing[mid] += 1
        for mid, n in sorted(per_mailing.items()):  # in id order, as every writer of mailings
            counters = {"claimed": mailings.c.claimed - n, "queued": mailings.c.queued + n}
            if recovered:
                counters["recovered"] = mailings.c.recovered + n
            conn.execute(update(mailings).where(mailings.c.id == mid).values(**counters))
    return len(rows)


def renew_leases(store: Store, owner: str, lease_seconds: float) -> int:
    with store.write() as conn:
        return conn.execute(
            update(messages)
            .where(state_is("claimed"), messages.c.lease_owner == owner)
            .values(lease_expires=store.now() + lease_seconds)
        ).rowcount


def read_control(conn: Connection, mailing_ids: Iterable[int]) -> Control:
    accs = conn.execute(select(accounts.c.id, accounts.c.stopped, accounts.c.generation)).all()
    ids = list(mailing_ids)
    status: dict[int, tuple[str, int]] = {}
    if ids:
        for mid, st, acc in conn.execute(
            select(mailings.c.id, mailings.c.status, mailings.c.account_id).where(mailings.c.id.in_(ids))
        ):
            status[mid] = (st, acc)
    return Control(
        {a.id: a.generation for a in accs},
        frozenset(a.id for a in accs if a.stopped),
        status,
        suppressions.read_mark(conn),
    )


def control(store: Store, mailing_ids: Iterable[int] = ()) -> Control:
    """The current stop state for the gate (a read: never waits for the writer)."""
    with store.read() as conn:
        return read_control(conn, mailing_ids)


def newest_revisions(store: Store, mailing_ids: Iterable[int]) -> dict[int, tuple]:
    """mailing id -> (revision id, subject, text, html, sender, list-unsubscribe, sender's display
    name, reply-to, store id, list-id) of its newest revision: the fields of engine.message.RevisionData, in order."""
    ids = list(mailing_ids)
    if not ids:
        return {}
    with store.read() as conn:
        rows = conn.execute(
            select(
                revisions.c.mailing_id, revisions.c.id, revisions.c.number, revisions.c.subject,
                revisions.c.text_body, revisions.c.html_body, mailings.c.sender, mailings.c.list_unsubscribe,
                mailings.c.sender_name, mailings.c.reply_to,
                func.coalesce(mailings.c.list_id, accounts.c.list_id).label("list_id"),
            )
            .join(mailings, mailings.c.id == revisions.c.mailing_id)
            .join(accounts, accounts.c.id == mailings.c.account_id)
            .where(revisions.c.mailing_id.in_(ids))
            .order_by(revisions.c.mailing_id, revisions.c.number)
        ).all()
        store_id = read_store_id(conn)
    out: dict = {}
    for r in rows:  # later numbers overwrite earlier ones
        out[r.mailing_id] = (r.id, r.subject, r.text_body, r.html_body, r.sender, r.list_unsubscribe,
                             r.sender_name or "", r.reply_to, store_id, r.list_id)
    return out
