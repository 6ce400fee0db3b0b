"""What the relays hold: the messages still in a relay's queue, and the relay agents.

An engine that hands a message to a relay records where it waits there
(messages.relay, relay_queue_id; relay_state 'queued': see queue.record). The
relay agent (mailconsole relay-agent) beside the relay then keeps the relay in
step with the stop: what should not go out is put on hold there, released on
resume, removed on delete; and it records what the relay finally did with each
message. relay_state moves only here, and only to what the relay confirmed:

    queued ──hold──► held ──release──► queued
      │  ╲             │  ╲
      │   ╲ delete      │   ╲ 7-day rule on resume: expired (the message is
      │    ► deleted ◄──┘    ► suspended in our queue, a requeue sends it again)
      ▼
    delivered / bounced   (from the relay's log; also from 'held': a message the
                           relay was already delivering when it was held)
    lost                  (gone from the relay's queue with no outcome in its log)

Only 'queued' and 'held' are "at the relay"; the partial index
ix_messages_at_relay holds just those rows, so every query here walks what the
relays hold now, never every message ever relayed. Each query names the same
literal condition (AT_RELAY) so that SQLite can use that index.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, and_, case, bindparam, delete, func, insert, not_, or_, select, text, update

from . import audit, policy, suppressions
from .actor import Actor
from .connection import Store
from .importer import normal_address
from .mailings import DELETED, PAUSED
from .schema import AT_RELAY_SQL, accounts, mailings, messages, relays, revisions, state_is
from .schema import suppressions as suppressions_table

QUEUED, HELD, DELIVERED, BOUNCED = "queued", "held", "delivered", "bounced"
DELETED_AT_RELAY, EXPIRED, LOST = "deleted", "expired", "lost"
RELAY_STATES = (QUEUED, HELD, DELIVERED, BOUNCED, DELETED_AT_RELAY, EXPIRED, LOST)
FINAL = (DELIVERED, BOUNCED)
AT_RELAY = text(AT_RELAY_SQL)

# The note of a message the relay was delivering as it was held (Postfix does not
# abort a delivery in progress): given with the hold when the relay says so
# (RelayQueue.delivering), kept by the outcome that follows (and given by an
# outcome that comes for a message already held). What "in delivery at the stop"
# counts, from the store (since_stop).
IN_DELIVERY_NOTE = "in delivery as it was held: "
DELIVERING_NOTE = IN_DELIVERY_NOTE + "delivery under way"

# An agent whose heartbeat is older than this is considered gone (as engines).
LIVE_WITHIN = 5.0
MAX_NOTE = 500
# The agent's writes take the lock by polling (as a stop does), not through
# SQLite's backing-off busy handler: what the relay did is recorded, and the next
# round of holds read, milliseconds after the engines' transactions end.
WRITE_PATIENCE = 5.0


class AtRelay(NamedTuple):
    """A message in a relay's queue that the agent must act on."""

    message_id: int
    queue_id: str
    relay_state: str  # queued | held
    relay_at: float | None
    mailing_id: int
    mailing_status: str
    account_id: int
    relay_note: str | None = None

    @property
    def in_delivery(self) -> bool:
        """Held while the relay was delivering it (see IN_DELIVERY_NOTE)."""
        return bool(self.relay_note) and self.relay_note.startswith(IN_DELIVERY_NOTE)  # type: ignore[union-attr]


def _relay_filter(relay: str | None):  # type: ignore[no-untyped-def]
    return messages.c.relay == relay if relay is not None else messages.c.relay.is_not(None)


def to_act_on(store: Store, relay: str | None, held_accounts: Iterable[int]) -> list[AtRelay]:
    """Messages at the relay whose state there differs from what the stop wants.

    Wanted on hold: the account is stopped (or held by a stop intent: the caller
    passes those in `held_accounts`), the mailing paused or deleted. 'queued' ones
    that should be held, 'held' ones that should not (released, or deleted).
    """
    accounts_held = list(held_accounts)
    want_held = or_(mailings.c.status.in_((PAUSED, DELETED)), mailings.c.account_id.in_(accounts_held))
    query = (
        select(messages.c.id, messages.c.relay_queue_id, messages.c.relay_state, messages.c.relay_at,
               mailings.c.id, mailings.c.status, mailings.c.account_id, messages.c.relay_note)
        .join(mailings, mailings.c.id == messages.c.mailing_id)
        .where(
            AT_RELAY, _relay_filter(relay),
            or_(
                and_(messages.c.relay_state == QUEUED, want_held),
                and_(messages.c.relay_state == HELD, or_(not_(want_held), mailings.c.status == DELETED)),
            ),
        )
    )
    with store.read() as conn:
        return [AtRelay(*r) for r in conn.execute(query)]


def find(store: Store, relay: str | None, queue_ids: Sequence[str]) -> dict[str, AtRelay]:
    """The messages at the relay with these queue ids (absent: unknown, or final already)."""
    if not queue_ids:
        return {}
    query = (
        select(messages.c.id, messages.c.relay_queue_id, messages.c.relay_state, messages.c.relay_at,
               mailings.c.id, mailings.c.status, mailings.c.account_id, messages.c.relay_note)
        .join(mailings, mailings.c.id == messages.c.mailing_id)
        .where(AT_RELAY, _relay_filter(relay), messages.c.relay_queue_id.in_(bindparam("ids", expanding=True)))
    )
    with store.read() as conn:
        return {r[1]: AtRelay(*r) for r in conn.execute(query, {"ids": list(queue_ids)})}


class Change(NamedTuple):
    message_id: int
    relay_state: str
    note: str | None = None
    at: float | None = None  # when the relay did it (its log); None: now


_MOVE = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"), AT_RELAY)
    .values(relay_state=bindparam("b_state"), relay_at=bindparam("b_at"), relay_note=bindparam("b_note"))
)


def _executemany(conn: Connection, statement, rows: list[dict]) -> int:  # type: ignore[no-untyped-def]
    """One statement for many rows, straight to the driver where it takes positional
    parameters: SQLAlchemy's per-row processing costs more than the UPDATE itself, and
    a stop's hold records ~1,500 rows at once, before it is acknowledged."""
    compiled = statement.compile(dialect=conn.dialect)
    if not compiled.positional:
        return conn.execute(statement, rows).rowcount
    order = compiled.positiontup or ()
    fixed = compiled.params
    result = conn.exec_driver_sql(str(compiled), [tuple(r[k] if k in r else fixed[k] for k in order) for r in rows])
    return result.rowcount


def apply(store: Store, changes: Sequence[Change], *, patience: float = WRITE_PATIENCE) -> int:
    """Record what the relay confirmed; only rows still at the relay move (a final outcome stays).

    StoreBusy after `patience` seconds without the write lock: the caller keeps the changes.
    """
    if not changes:
        return 0
    now = store.now()
    rows = [{"b_id": c.message_id, "b_state": c.relay_state, "b_at": c.at if c.at is not None else now,
             "b_note": c.note[:MAX_NOTE] if c.note else None} for c in changes]
    bounced = [c for c in changes if c.relay_state == BOUNCED and hard_bounce(c.note)]
    with store.write(patience=patience) as conn:
        # Before the move: only those still at the relay bounce now (a repeat changes nothing).
        to_suppress = _still_at_relay(conn, bounced) if bounced and policy.read(conn).suppress_bounces else []
        moved = _executemany(conn, _MOVE, rows)
        if to_suppress:
            _suppress_bounced(conn, now, to_suppress)
        return moved


# A permanent failure's enhanced status code (RFC 3463 class 5) in the relay's words:
# "host mx[…] said: 550 5.1.1 <a@b>: user unknown". An expired message (Postfix's
# "expired", after days of deferrals) has none: its address may well be good.
_HARD = re.compile(r"(?<![\d.])5\.\d{1,3}\.\d{1,3}(?![\d.])")
RELAY_ACTOR = Actor("relay")


def hard_bounce(reply: str | None) -> bool:
    return bool(reply) and _HARD.search(reply) is not None  # type: ignore[arg-type]


def _still_at_relay(conn: Connection, bounced: Sequence[Change]) -> list[tuple[int, str, str, str]]:
    """(account id, account name, address, reply) of the bounced messages still at the relay."""
    notes = {c.message_id: c.note or "" for c in bounced}
    rows = conn.execute(
        select(messages.c.id, mailings.c.account_id, accounts.c.name, messages.c.email)
        .join(mailings, mailings.c.id == messages.c.mailing_id)
        .join(accounts, accounts.c.id == mailings.c.account_id)
        .where(AT_RELAY, messages.c.id.in_(bindparam("ids", expanding=True))),
        {"ids": list(notes)},
    ).all()
    return [(acc, name, email, notes[mid]) for mid, acc, name, email in rows]


def _suppress_bounced(conn: Connection, now: float, bounced: list[tuple[int, str, str, str]]) -> None:
    """The policy's suppress_bounces: each hard-bounced address joins its account's list, once.

    In the transaction that records the bounce, so the next claim already skips
    the address; audited once per account per batch, by the relay.
    """
    added: dict[str, list[str]] = defaultdict(list)
    for acc, account, email, reply in bounced:
        email = normal_address(email)
        if suppressions.is_suppressed(conn, acc, email) or email in added[account]:
            continue
        reason = f"bounced: {' '.join(reply.split())}"[:suppressions.MAX_REASON]
        conn.execute(insert(suppressions_table).values(account_id=acc, email=email, reason=reason,
                                                       created_at=now, created_by=RELAY_ACTOR.user))
        added[account].append(email)
    if any(added.values()):
        suppressions.bump_mark(conn)
    for account, emails in added.items():
        if emails:
            audit.record(conn, now, RELAY_ACTOR, account, "suppress-bounces", None, count=len(emails),
                         emails=emails[:20], source="relay")


def expire(store: Store, message_ids: Sequence[int], note: str, *, patience: float = WRITE_PATIENCE) -> int:
    """The 7-day rule for messages removed from the relay on resume: suspended in our queue.

    They were counted sent when the relay took them; now they wait like any
    other suspended message (visible, deletable, requeueable): the sent counters
    of their mailing and revision go back, the suspended counter up.
    """
    if not message_ids:
        return 0
    now = store.now()
    with store.write(patience=patience) as conn:
        rows = conn.execute(
            update(messages)
            .where(messages.c.id.in_(bindparam("ids", expanding=True)), messages.c.state == "sent", AT_RELAY)
            .values(state="suspended", relay_state=EXPIRED, relay_at=now, relay_note=note[:MAX_NOTE])
            .returning(messages.c.mailing_id, messages.c.revision_id),
            {"ids": list(message_ids)},
        ).all()
        _move_counters(conn, rows)
    return len(rows)


def _move_counters(conn: Connection, rows: Sequence[tuple[int, int | None]]) -> None:
    per_mailing: dict[int, int] = defaultdict(int)
    per_revision: dict[int, int] = defaultdict(int)
    for mid, rid in rows:
        per_mailing[mid] += 1
        if rid is not None:
            per_revision[rid] += 1
    # Mailings then revisions, each in id order: as every writer of them (queue.record).
    for mid, n in sorted(per_mailing.items()):
        conn.execute(update(mailings).where(mailings.c.id == mid)
                     .values(sent=mailings.c.sent - n, suspended=mailings.c.suspended + n))
    for rid, n in sorted(per_revision.items()):
        conn.execute(update(revisions).where(revisions.c.id == rid).values(sent=revisions.c.sent - n))


def held_per_account(store: Store, relay: str | None) -> dict[int, int]:
    """How many messages each account has on hold at the relay now."""
    query = (
        select(mailings.c.account_id, func.count())
        .select_from(messages.join(mailings, mailings.c.id == messages.c.mailing_id))
        .where(AT_RELAY, _relay_filter(relay), messages.c.relay_state == HELD)
        .group_by(mailings.c.account_id)
    )
    with store.read() as conn:
        return {acc: n for acc, n in conn.execute(query)}


def in_flight(store: Store, account_ids: Iterable[int], owners: Iterable[str]) -> dict[int, int]:
    """Messages of these accounts claimed by these engines (live ones), their results not recorded yet.

    Until such a message's result is recorded the relay may have accepted it
    without our knowing its queue id: a stop at the relay is not honoured while
    any is left. Claims of other owners (engines gone) and expired leases are
    not counted: nobody will record them, and the lease expiry requeues them.
    Walks the claimed rows only (ix_messages_state).
    """
    accs, live = list(account_ids), list(owners)
    if not accs or not live:
        return {}
    query = (
        select(mailings.c.account_id, func.count())
        .select_from(messages.join(mailings, mailings.c.id == messages.c.mailing_id))
        .where(state_is("claimed"), messages.c.lease_expires > store.now(),
               messages.c.lease_owner.in_(bindparam("owners", expanding=True)),
               mailings.c.account_id.in_(bindparam("accounts", expanding=True)))
        .group_by(mailings.c.account_id)
    )
    with store.read() as conn:
        return {acc: n for acc, n in conn.execute(query, {"owners": live, "accounts": accs})}


class SinceStop(NamedTuple):
    """What the relay did with an account's messages after its current stop's commit."""

    in_delivery: int  # held, but the relay was delivering them as they were held
    delivered: int
    bounced: int
    done_while_held: int = 0  # of those in delivery, the ones finished (no longer on hold)


def since_stop(store: Store, relay: str | None, account_ids: Iterable[int]) -> dict[int, SinceStop]:
    """Per stopped account: what the relay did with its messages since its stop's commit.

    From the message rows alone (relay_state, relay_at, the note a message in
    delivery as it was held gets), so that an agent started again reports what
    the one before it saw. Reads every relayed message of the account (no index on
    relay_at): an agent calls it once per stop it notices and counts on from there.
    """
    accs = list(account_ids)
    if not accs:
        return {}
    in_delivery = func.sum(case((messages.c.relay_note.like(IN_DELIVERY_NOTE + "%"), 1), else_=0))
    query = (
        select(mailings.c.account_id, messages.c.relay_state, in_delivery, func.count())
        .select_from(messages.join(mailings, mailings.c.id == messages.c.mailing_id)
                     .join(accounts, accounts.c.id == mailings.c.account_id))
        .where(accounts.c.id.in_(bindparam("accounts", expanding=True)), accounts.c.stopped.is_(True),
               _relay_filter(relay), messages.c.relay_state.in_((*FINAL, HELD)),
               messages.c.relay_at >= accounts.c.stopped_at)
        .group_by(mailings.c.account_id, messages.c.relay_state)
    )
    out: dict[int, list[int]] = {}
    with store.read() as conn:
        for acc, state, marked, n in conn.execute(query, {"accounts": accs}):
            counts = out.setdefault(acc, [0, 0, 0, 0])
            counts[0] += int(marked or 0)
            if state == HELD:
                continue
            counts[1 if state == DELIVERED else 2] += n
            counts[3] += int(marked or 0)
    return {acc: SinceStop(*c) for acc, c in out.items()}


def at_relay(store: Store, relay: str | None) -> int:
    """How many of our messages wait at the relay (queued or held): for flow control and status."""
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(messages).where(AT_RELAY, _relay_filter(relay))).scalar_one()


# -- the agents' rows -----------------------------------------------------------


@dataclass(frozen=True)
class StopAck:
    """What an agent did for one stop of one account."""

    generation: int
    held: int  # messages it put on hold at the relay for this stop
    in_delivery: int  # held ones the relay was already delivering: finished after the hold
    delivered_after: int  # messages of the account the relay delivered after the stop's commit
    bounced_after: int
    at: float  # when it acknowledged (all it could hold was held)

    def as_dict(self) -> dict:
        return {"generation": self.generation, "held": self.held, "in_delivery": self.in_delivery,
                "delivered_after": self.delivered_after, "bounced_after": self.bounced_after, "at": self.at}

    @classmethod
    def from_dict(cls, d: dict) -> "StopAck":
        return cls(int(d.get("generation", 0)), int(d.get("held", 0)), int(d.get("in_delivery", 0)),
                   int(d.get("delivered_after", 0)), int(d.get("bounced_after", 0)), float(d.get("at", 0.0)))


@dataclass(frozen=True)
class RelayInfo:
    id: str
    host: str
    pid: int
    kind: str
    relay: str | None
    started_at: float
    heartbeat_at: float
    state: str
    acknowledged: dict[int, StopAck]
    counts: dict[str, int]
    queue_size: int | None
    note: str | None
    alive: bool

    def honoured(self, account_id: int, generation: int) -> bool:
        """Whether this agent has acted on stop `generation` of the account (and is alive to keep it)."""
        ack = self.acknowledged.get(account_id)
        return self.alive and ack is not None and ack.generation >= generation


@dataclass(frozen=True)
class StopAtRelay:
    """One live relay agent after a stop: whether it acknowledged the stop in time, and its counts."""

    agent: RelayInfo
    ack: StopAck | None  # None: it did not acknowledge within the wait

    def summary(self, waited: float) -> str:
        """One line for the operator who just stopped (`mailconsole stop`, the console)."""
        where = f"relay {self.agent.relay or 'any'} (agent on {self.agent.host})"
        if self.ack is not None:
            return (f"{where}: held {self.ack.held:,}, in delivery at the stop {self.ack.in_delivery:,}; "
                    "only what it was delivering as the hold finished can still reach recipients")
        return (f"{where}: did not acknowledge within {waited:g} s: {self.agent.note or 'no note'}; "
                "what it still queues of this account may keep going out until it does "
                "(`mailconsole status` says when)")

    def as_dict(self) -> dict:
        return {"id": self.agent.id, "host": self.agent.host, "relay": self.agent.relay,
                "acknowledged": self.ack is not None, "note": self.agent.note,
                **({"held": self.ack.held, "in_delivery": self.ack.in_delivery} if self.ack else {})}


def wait_for_stop(store: Store, account_id: int, generation: int, timeout: float, *,
                  poll: float = 0.02) -> list[StopAtRelay]:
    """Wait up to `timeout` seconds for every live relay agent to acknowledge the stop.

    For the stop's caller, after its commit and dot fence (never before: the
    stop itself must not wait for a relay). Agents gone meanwhile are left out;
    with timeout 0 the agents are read once.
    """
    deadline = time.monotonic() + timeout
    while True:
        live = [r for r in list_relays(store) if r.alive]
        if all(r.honoured(account_id, generation) for r in live) or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return [StopAtRelay(r, r.acknowledged[account_id] if r.honoured(account_id, generation) else None) for r in live]


def beat(store: Store, agent_id: str, *, acknowledged: dict[int, StopAck], counts: dict[str, int],
         patience: float = WRITE_PATIENCE, **values: object) -> None:
    """Insert or update this agent's row (values as in the relays table)."""
    row = dict(values)
    row["acknowledged"] = json.dumps({str(k): v.as_dict() for k, v in acknowledged.items()})
    row["counts"] = json.dumps(counts)
    row["heartbeat_at"] = store.now()
    with store.write(patience=patience) as conn:
        if not conn.execute(update(relays).where(relays.c.id == agent_id).values(**row)).rowcount:
            conn.execute(insert(relays).values(id=agent_id, **row))


def forget(store: Store, agent_id: str) -> None:
    with store.write() as conn:
        conn.execute(delete(relays).where(relays.c.id == agent_id))


def list_relays(store: Store, *, include_gone: bool = False, gone_after: float = 300.0) -> list[RelayInfo]:
    """Relay agents with a recent heartbeat (and, if asked, those gone in the last minutes)."""
    now = store.now()
    with store.read() as conn:
        rows = conn.execute(select(relays).order_by(relays.c.started_at)).all()
    out = []
    for r in rows:
        alive = r.state != "stopped" and now - r.heartbeat_at <= LIVE_WITHIN
        if not alive and (not include_gone or now - r.heartbeat_at > gone_after):
            continue
        acks = {int(k): StopAck.from_dict(v) for k, v in json.loads(r.acknowledged or "{}").items()}
        out.append(RelayInfo(r.id, r.host, r.pid, r.kind, r.relay, r.started_at, r.heartbeat_at, r.state, acks,
                             {str(k): int(v) for k, v in json.loads(r.counts or "{}").items()}, r.queue_size,
                             r.note, alive))
    return out


__all__ = ["AT_RELAY", "AtRelay", "Change", "RelayInfo", "StopAck", "apply", "at_relay", "beat", "expire", "find",
           "forget", "held_per_account", "in_flight", "list_relays", "since_stop", "wait_for_stop", "SinceStop",
           "StopAtRelay", "IN_DELIVERY_NOTE", "to_act_on", "RELAY_STATES", "FINAL"]
