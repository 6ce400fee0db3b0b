"""One read of everything an operator asks first: stopped? what is queued? who sends?

`overview` is one account in full; `all_accounts` is every account in one line each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from .accounts import AccountState, state
from .connection import Store
from .engines import GONE_LISTED_FOR, EngineInfo, roster
from .mailings import DELETED, Mailing, list_mailings
from .schema import accounts as accounts_table
from .schema import mailings as mailings_table
from .relays import RelayInfo, list_relays


@dataclass(frozen=True)
class Overview:
    account: AccountState
    mailings: list[Mailing]  # including planned ones
    engines: list[EngineInfo]  # live ones and recently gone ones
    hidden_engines: int = 0  # gone longer ago than GONE_LISTED_FOR: counted, not listed
    relays: list[RelayInfo] = field(default_factory=list)  # relay agents, live and recently gone

    @property
    def live_engines(self) -> list[EngineInfo]:
        return [e for e in self.engines if e.alive]

    @property
    def queue(self) -> dict[str, int]:
        totals = {"queued": 0, "in_flight": 0, "sent": 0, "failed": 0, "suspended": 0, "suppressed": 0}
        for m in self.mailings:
            totals["queued"] += m.queued
            totals["in_flight"] += m.in_flight
            totals["sent"] += m.sent
            totals["failed"] += m.failed
            totals["suspended"] += m.suspended
            totals["suppressed"] += m.suppressed
        return totals

    @property
    def rate(self) -> float:
        return sum(e.sent_rate for e in self.live_engines)

    @property
    def in_flight(self) -> int:
        return sum(e.in_flight for e in self.live_engines)

    @property
    def acknowledged(self) -> int:
        """How many live engines have honoured the current stop."""
        return sum(
            1 for e in self.live_engines if e.acknowledged_generation(self.account.id) >= self.account.generation
        )

    @property
    def live_relays(self) -> list[RelayInfo]:
        return [r for r in self.relays if r.alive]

    @property
    def relays_acknowledged(self) -> int:
        """How many live relay agents hold what their relay had queued of the current stop."""
        return sum(1 for r in self.live_relays if r.honoured(self.account.id, self.account.generation))

    @property
    def quiescent(self) -> bool:
        """Stopped, and every engine and every relay agent has honoured the stop."""
        return (self.account.stopped and self.acknowledged == len(self.live_engines)
                and self.relays_acknowledged == len(self.live_relays))

    def as_dict(self) -> dict:
        a = self.account
        return {
            "account": a.name,
            "stopped": a.stopped,
            "since": a.stopped_at if a.stopped else None,
            "by": (a.stopped_by if a.stopped else None),
            "from": (a.stopped_from if a.stopped else None),
            "reason": a.reason if a.stopped else None,
            "generation": a.generation,
            "queue": self.queue,
            "mailings": [m.as_dict() for m in self.mailings],
            "engines": [
                {
                    "id": e.id, "host": e.host, "pid": e.pid, "workers": e.workers, "state": e.state,
                    "alive": e.alive, "in_flight": e.in_flight, "sent_rate": e.sent_rate,
                    "failed_rate": e.failed_rate, "heartbeat_at": e.heartbeat_at,
                    "acknowledged_generation": e.acknowledged_generation(a.id), "note": e.note,
                }
                for e in self.engines
            ],
            "live_engines": len(self.live_engines),  # 0 while running: nothing is being sent
            "hidden_engines": self.hidden_engines,
            "rate": self.rate,
            "relays": [relay_dict(r, a.id, a.generation) for r in self.relays],
        }


def relay_dict(r: RelayInfo, account_id: int, generation: int) -> dict:
    """One relay agent as `status --json` shows it; `stop`: what it did for the current stop."""
    ack = r.acknowledged.get(account_id)
    current = ack is not None and ack.generation >= generation
    return {
        "id": r.id, "host": r.host, "pid": r.pid, "kind": r.kind, "relay": r.relay, "state": r.state,
        "alive": r.alive, "heartbeat_at": r.heartbeat_at, "at_relay": r.queue_size, "counts": r.counts,
        "note": r.note, "honoured": r.honoured(account_id, generation),
        "stop": ack.as_dict() if current and ack is not None else None,
    }


def overview(store: Store, account: str = "default") -> Overview:
    engines = roster(store)
    return Overview(state(store, account), list_mailings(store, account, planned=True), engines.engines,
                    engines.hidden, list_relays(store, include_gone=True))


def hidden_engines_note(ov: Overview) -> str:
    """Why fewer engines are listed than have run, in the words the console and `status` both use."""
    n = ov.hidden_engines
    if not n:
        return ""
    return f"{n} gone engine{'s' if n != 1 else ''} hidden (gone > {GONE_LISTED_FOR / 60:g} min)"


# -- every account at once ------------------------------------------------------


@dataclass(frozen=True)
class AccountSummary:
    """One account's state and queue, from its row and its mailings' maintained counters."""

    name: str
    stopped: bool
    stopped_at: float | None
    stopped_by: str | None
    reason: str | None
    queued: int
    in_flight: int
    sent: int  # ever sent by its live mailings: two summaries apart give the account's rate
    failed: int
    suspended: int
    mailings: int  # not deleted, planned ones included

    def as_dict(self) -> dict:
        return {
            "account": self.name, "stopped": self.stopped,
            "since": self.stopped_at if self.stopped else None,
            "by": self.stopped_by if self.stopped else None,
            "reason": self.reason if self.stopped else None,
            "queued": self.queued, "in_flight": self.in_flight, "sent": self.sent, "failed": self.failed,
            "suspended": self.suspended, "mailings": self.mailings,
        }


def all_accounts(store: Store) -> list[AccountSummary]:
    """Every account, by name, with its totals: one grouped read of the mailings table.

    Only the per-mailing counters are summed (never the message table), so this
    costs the same with a million messages queued as with none.
    """
    live = mailings_table.c.status != DELETED
    totals = (
        select(
            mailings_table.c.account_id,
            func.sum(mailings_table.c.queued).label("queued"),
            func.sum(mailings_table.c.claimed).label("in_flight"),
            func.sum(mailings_table.c.sent).label("sent"),
            func.sum(mailings_table.c.failed).label("failed"),
            func.sum(mailings_table.c.suspended).label("suspended"),
            func.count().label("mailings"),
        )
        .where(live)
        .group_by(mailings_table.c.account_id)
        .subquery()
    )
    query = (
        select(accounts_table, totals)
        .select_from(accounts_table.outerjoin(totals, totals.c.account_id == accounts_table.c.id))
        .order_by(accounts_table.c.name)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [
        AccountSummary(
            r.name, bool(r.stopped), r.stopped_at, r.stopped_by, r.stop_reason,
            int(r.queued or 0), int(r.in_flight or 0), int(r.sent or 0), int(r.failed or 0),
            int(r.suspended or 0), int(r.mailings or 0),
        )
        for r in rows
    ]


def sent_rates(before: list[AccountSummary], after: list[AccountSummary], elapsed: float) -> dict[str, float]:
    """Each account's messages per second between two `all_accounts` reads `elapsed` seconds apart.

    Engines report one rate for all they send, so an account's own rate comes from
    its counter. A deleted mailing takes its sent count with it: never negative.
    An account new since `before` starts from its count then (rate 0).
    """
    if elapsed <= 0:
        return {}
    then = {a.name: a.sent for a in before}
    return {a.name: max(0, a.sent - then.get(a.name, a.sent)) / elapsed for a in after}
