"""Automatic pauses and stops: the policy's verdict carried out, and kept until an operator has seen it.

The engine (or a relay agent, for bounces) that finds a window past a
threshold calls `pause_mailing` or `stop_account`: the same store paths as an
operator's pause and stop (the status or stop committed, the dot fence
passed), with actor "engine" and the window's figures in the audit entry.
Several engines may judge the same mailing at once: only the call whose
transaction changes its status records anything, so it is paused (and
audited, and shown) once.

Each automatic pause or stop is also kept per account in the key/value table
(one primary-key row) until an operator acknowledges it, so that the console
can show it on every tab with one cheap read per refresh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from . import accounts as account_store
from . import audit
from . import mailings as mailing_store
from .actor import Actor
from .connection import Store
from .errors import NotFound, Refused
from .schema import accounts, mailings, meta

ENGINE = Actor("engine")
KEY_PREFIX = "auto_pauses."  # + account id: JSON list of the open (unacknowledged) ones
MAX_KEPT = 20  # a runaway cannot grow the row without bound; the audit log keeps them all
PAUSE, STOP = "auto-pause", "auto-stop"


@dataclass(frozen=True)
class Trip:
    """One automatic pause (of a mailing) or stop (of the account), as the console shows it."""

    kind: str  # PAUSE or STOP
    at: float
    account: str
    mailing_id: int | None
    mailing_name: str | None
    rule: str  # which threshold: "permanent", "bounced", "deferred"
    figures: dict[str, Any]  # the window: outcomes, permanent, bounced, deferred, rate, threshold, top replies
    by: str  # the engine (or relay agent) that judged

    def as_dict(self) -> dict:
        return {"kind": self.kind, "at": self.at, "account": self.account, "mailing_id": self.mailing_id,
                "mailing_name": self.mailing_name, "rule": self.rule, "figures": self.figures, "by": self.by}

    @classmethod
    def from_dict(cls, d: dict) -> "Trip":
        return cls(d["kind"], float(d["at"]), d["account"], d.get("mailing_id"), d.get("mailing_name"),
                   d.get("rule", ""), dict(d.get("figures") or {}), d.get("by", ""))

    def summary(self) -> str:
        """One line: what was paused or stopped and why."""
        f = self.figures
        what = f"mailing {self.mailing_id} ({self.mailing_name})" if self.kind == PAUSE else f"account {self.account}"
        verb = "paused" if self.kind == PAUSE else "stopped"
        return (f"{what} {verb} by the engine: {self.rule} {f.get('rate', 0):g}% > {f.get('threshold', 0):g}% "
                f"of the last {f.get('outcomes', 0):,} outcomes")


def _key(account_id: int) -> str:
    return f"{KEY_PREFIX}{account_id}"


def _open(conn: Connection, account_id: int) -> list[dict]:
    raw = conn.execute(select(meta.c.value).where(meta.c.key == _key(account_id))).scalar()
    try:
        return list(json.loads(raw)) if raw else []
    except ValueError:
        return []


def _keep(conn: Connection, account_id: int, trip: Trip) -> None:
    kept = (_open(conn, account_id) + [trip.as_dict()])[-MAX_KEPT:]
    value = json.dumps(kept, sort_keys=True)
    if conn.execute(update(meta).where(meta.c.key == _key(account_id)).values(value=value)).rowcount == 0:
        conn.execute(insert(meta).values(key=_key(account_id), value=value))


def _details(rule: str, figures: dict[str, Any], by: str) -> dict[str, Any]:
    return {"automatic": True, "rule": rule, "window": figures, "by": by}


def pause_mailing(store: Store, mailing_id: int, rule: str, figures: dict[str, Any], by: str) -> Trip | None:
    """Pause the mailing for the policy; the Trip if this call paused it, None if it was not sending.

    None also when it is gone, finished or paused already (by an operator or
    another engine): nothing is recorded then.
    """
    with store.read() as conn:
        row = conn.execute(select(mailings.c.name, mailings.c.status, accounts.c.id, accounts.c.name)
                           .join(accounts, accounts.c.id == mailings.c.account_id)
                           .where(mailings.c.id == mailing_id)).first()
    if row is None or row[1] != mailing_store.SENDING:
        return None
    name, _, acc_id, account = row
    trip = Trip(PAUSE, store.now(), account, mailing_id, name, rule, figures, by)
    done: list[Trip] = []

    def record(conn: Connection) -> None:
        _keep(conn, acc_id, trip)
        done.append(trip)

    try:
        mailing_store.pause(store, ENGINE, mailing_id, account, details=_details(rule, figures, by), on_paused=record)
    except (NotFound, Refused):  # deleted or finished meanwhile
        return None
    return done[0] if done else None


def stop_account(store: Store, account_id: int, rule: str, figures: dict[str, Any], by: str) -> Trip | None:
    """The emergency stop for the policy; the Trip if this call stopped the account, else None."""
    with store.read() as conn:
        row = conn.execute(select(accounts.c.name, accounts.c.stopped).where(accounts.c.id == account_id)).first()
    if row is None or row[1]:
        return None
    account = row[0]
    trip = Trip(STOP, store.now(), account, None, None, rule, figures, by)
    done: list[Trip] = []

    def record(conn: Connection) -> None:
        _keep(conn, account_id, trip)
        done.append(trip)

    account_store.stop(store, ENGINE, account, reason=f"automatic: {trip.summary()}",
                       details=_details(rule, figures, by), on_stopped=record)
    return done[0] if done else None


def open_trips(store: Store, account: str = "default") -> list[Trip]:
    """The automatic pauses and stops of the account no operator has acknowledged yet, oldest first."""
    with store.read() as conn:
        acc = account_store.account_id(conn, account)
        return [Trip.from_dict(d) for d in _open(conn, acc)]


def acknowledge(store: Store, actor: Actor, account: str = "default") -> int:
    """The operator has seen them: they leave the banner (audited). How many there were.

    The pause or stop itself stays: unpausing and resuming are their own actions.
    """
    with store.write() as conn:
        acc = account_store.account_id(conn, account)
        trips = _open(conn, acc)
        if not trips:
            return 0
        conn.execute(update(meta).where(meta.c.key == _key(acc)).values(value="[]"))
        audit.record(conn, store.now(), actor, account, "acknowledge", None,
                     automatic=[{"kind": t["kind"], "mailing_id": t.get("mailing_id"), "at": t["at"]} for t in trips])
    return len(trips)


def trip_details(trip: Trip) -> dict[str, Any]:
    """What a notification says of an automatic pause or stop (the event `automatic_pause`)."""
    return {"why": trip.summary(), "account": trip.account, "kind": trip.kind, "mailing": trip.mailing_id,
            "mailing_name": trip.mailing_name, "rule": trip.rule, "figures": trip.figures, "by": trip.by}
