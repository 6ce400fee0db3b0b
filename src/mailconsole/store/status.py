"""One read of everything an operator asks first: stopped? what is queued? who sends?"""

from __future__ import annotations

from dataclasses import dataclass, field

from .accounts import AccountState, state
from .connection import Store
from .engines import EngineInfo, list_engines
from .mailings import Mailing, list_mailings
from .relays import RelayInfo, list_relays


@dataclass(frozen=True)
class Overview:
    account: AccountState
    mailings: list[Mailing]  # including planned ones
    engines: list[EngineInfo]  # live ones and recently gone ones
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
    return Overview(state(store, account), list_mailings(store, account, planned=True), list_engines(store, include_gone=True),
                    list_relays(store, include_gone=True))
