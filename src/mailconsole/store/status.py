"""One read of everything an operator asks first: stopped? what is queued? who sends?"""

from __future__ import annotations

from dataclasses import dataclass

from .accounts import AccountState, state
from .connection import Store
from .engines import GONE_LISTED_FOR, EngineInfo, roster
from .mailings import Mailing, list_mailings


@dataclass(frozen=True)
class Overview:
    account: AccountState
    mailings: list[Mailing]  # including planned ones
    engines: list[EngineInfo]  # live ones and recently gone ones
    hidden_engines: int = 0  # gone longer ago than GONE_LISTED_FOR: counted, not listed

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
    def quiescent(self) -> bool:
        return self.account.stopped and self.acknowledged == len(self.live_engines)

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
        }


def overview(store: Store, account: str = "default") -> Overview:
    engines = roster(store)
    return Overview(state(store, account), list_mailings(store, account, planned=True), engines.engines,
                    engines.hidden)


def hidden_engines_note(ov: Overview) -> str:
    """Why fewer engines are listed than have run, in the words the console and `status` both use."""
    n = ov.hidden_engines
    if not n:
        return ""
    return f"{n} gone engine{'s' if n != 1 else ''} hidden (gone > {GONE_LISTED_FOR / 60:g} min)"
