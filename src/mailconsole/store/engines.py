"""Engine heartbeats: who is sending, how fast, and which stop they honoured."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from .connection import Store
from .schema import engines

# An engine whose heartbeat is older than this is considered gone.
LIVE_WITHIN = 5.0


@dataclass(frozen=True)
class EngineInfo:
    id: str
    host: str
    pid: int
    workers: int
    transport: str
    started_at: float
    heartbeat_at: float
    state: str
    in_flight: int
    sent_rate: float
    failed_rate: float
    sent_total: int
    failed_total: int
    acknowledged: dict[int, int]
    note: str | None
    alive: bool

    def acknowledged_generation(self, account_id: int) -> int:
        return self.acknowledged.get(account_id, 0)


def beat(store: Store, engine_id: str, **values: object) -> None:
    """Insert or update this engine's row (values as in the engines table)."""
    values = dict(values)
    if "acknowledged" in values and not isinstance(values["acknowledged"], str):
        values["acknowledged"] = json.dumps({str(k): v for k, v in values["acknowledged"].items()})  # type: ignore[union-attr]
    values["heartbeat_at"] = store.now()
    with store.write() as conn:
        n = conn.execute(update(engines).where(engines.c.id == engine_id).values(**values)).rowcount
        if not n:
            conn.execute(insert(engines).values(id=engine_id, **values))


def forget(store: Store, engine_id: str) -> None:
    with store.write() as conn:
        conn.execute(delete(engines).where(engines.c.id == engine_id))


# A gone engine (it said it stopped, or its heartbeat is older than LIVE_WITHIN) stays
# listed, marked gone, this long: long enough to see that it quit, not so long that
# the list fills with engines of last week. After that it is only counted.
GONE_LISTED_FOR = 600.0


@dataclass(frozen=True)
class Roster:
    """The engines worth listing, and how many gone ones were left out."""

    engines: list[EngineInfo]  # in start order: live ones and ones gone within GONE_LISTED_FOR
    hidden: int  # gone for longer than that


def roster(store: Store, *, gone_after: float = GONE_LISTED_FOR) -> Roster:
    now = store.now()
    with store.read() as conn:
        rows = conn.execute(select(engines).order_by(engines.c.started_at)).all()
    out = []
    hidden = 0
    for r in rows:
        alive = r.state != "stopped" and now - r.heartbeat_at <= LIVE_WITHIN
        if not alive and now - r.heartbeat_at > gone_after:
            hidden += 1
            continue
        out.append(
            EngineInfo(
                r.id, r.host, r.pid, r.workers, r.transport, r.started_at, r.heartbeat_at, r.state,
                r.in_flight if alive else 0, r.sent_rate if alive else 0.0, r.failed_rate if alive else 0.0,
                r.sent_total, r.failed_total,
                {int(k): v for k, v in json.loads(r.acknowledged).items()}, r.note, alive,
            )
        )
    return Roster(out, hidden)


def list_engines(store: Store, *, include_gone: bool = False, gone_after: float = GONE_LISTED_FOR) -> list[EngineInfo]:
    """Engines with a recent heartbeat (and, if asked, those gone in the last minutes)."""
    listed = roster(store, gone_after=gone_after).engines
    return listed if include_gone else [e for e in listed if e.alive]


def live_engines(store: Store) -> list[EngineInfo]:
    return [e for e in list_engines(store) if e.alive]
