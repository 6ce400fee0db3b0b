"""Wake-ups on PostgreSQL: NOTIFY when the stop state or the work changes, LISTEN to read at once.

A wake-up is only a hint. The tables stay the truth and every reader keeps
polling them: PostgreSQL delivers a notification only when its transaction
commits, merges repeats, and drops what arrives while a listener is
disconnected. So a Listener returns RECONNECTED after it has been away, and its
caller then reads the tables as it would on any other wake-up.

One channel for everything; the payload says what changed, as a small JSON
object ({"what": "stop", "account": 3}). NOTIFY takes a lock held until commit,
shared by the whole cluster: notify once per operator action or batch of new
work, never per message.

The listening connection is its own, in autocommit (LISTEN needs it), never from
a pool: a pooler in transaction mode (PgBouncer) would lose the LISTEN.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import psycopg
from psycopg import sql
from sqlalchemy import Connection as SAConnection
from sqlalchemy import text
from sqlalchemy.engine import make_url

CHANNEL = "mailconsole"
# What changed: the stop state (stop, pause, delete, resume) or new work to claim
# (a mailing created, planned ones due, messages put back in the queue).
STOP, PAUSE, DELETE, RESUME, WORK = "stop", "pause", "delete", "resume", "work"
WHATS = (STOP, PAUSE, DELETE, RESUME, WORK)
# Not sent by anyone: what a Listener returns after it was disconnected (it may
# have missed notifications meanwhile).
RECONNECTED = "reconnected"
MAX_PAYLOAD = 1000  # bytes; PostgreSQL's limit is 8000, a wake-up needs a few dozen
# How often a disconnected listener tries the server again.
RECONNECT_EVERY = 0.5
# libpq's TCP keepalives: a listener whose server vanished without closing the
# connection (a partition, a failover) notices within about idle + interval * count s.
KEEPALIVES = {"keepalives": "1", "keepalives_idle": "5", "keepalives_interval": "2", "keepalives_count": "2"}

Connector = Callable[[], psycopg.Connection]


@dataclass(frozen=True)
class Wakeup:
    """One notification: what changed and its details (account, mailing ids)."""

    what: str
    details: dict[str, Any] = field(default_factory=dict)


def payload(what: str, **details: object) -> str:
    """The notification's text for `what` with its details (ints and short strings)."""
    if what not in WHATS:
        raise ValueError(f"unknown wake-up {what!r}; one of {', '.join(WHATS)}")
    # ensure_ascii=False: an account name in UTF-8 takes at most 4 bytes a character, not 12.
    text_ = json.dumps({"what": what, **details}, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if len(text_.encode()) > MAX_PAYLOAD:
        raise ValueError(f"wake-up payload of {len(text_.encode())} bytes; at most {MAX_PAYLOAD}")
    return text_


def notify(connection: Union[SAConnection, psycopg.Connection], what: str, channel: str = CHANNEL,
           **details: object) -> None:
    """Queue a wake-up in the connection's transaction: listeners get it when that commits.

    Called inside the write transaction that changes the state (a stop's, a new
    mailing's), so no listener is woken for a change it cannot read yet, nor for
    one that was rolled back.
    """
    body = payload(what, **details)
    if isinstance(connection, SAConnection):
        connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": body})
    else:
        connection.execute("SELECT pg_notify(%s, %s)", [channel, body])


def parse(raw: str) -> Wakeup:
    """A notification's payload as a Wakeup; any other text (anyone may NOTIFY) is a bare hint."""
    try:
        data = json.loads(raw)
    except ValueError:
        return Wakeup("unknown")
    if not isinstance(data, dict) or not isinstance(data.get("what"), str):
        return Wakeup("unknown")
    what = data.pop("what")
    return Wakeup(what, data)


def conninfo(url: str, **options: str) -> str:
    """libpq connection string for a store URL (postgresql+psycopg://…), its query options kept.

    The password, when the URL holds none, comes from libpq itself (PGPASSWORD,
    PGPASSFILE or ~/.pgpass); sslmode and the other libpq options pass through, and
    so do several hosts (SQLAlchemy's `?host=a:5432&host=b:5432` form) for a failover.
    """
    parsed = make_url(url)
    params: dict[str, object] = dict(KEEPALIVES)
    for key, value in parsed.query.items():
        if key == "host":
            hosts = [value] if isinstance(value, str) else list(value)
            params["host"] = ",".join(h.rpartition(":")[0] if ":" in h else h for h in hosts)
            if any(":" in h for h in hosts):
                params["port"] = ",".join(h.rpartition(":")[2] if ":" in h else "" for h in hosts)
        elif isinstance(value, str):
            params[key] = value
    for key, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username),
                       ("password", parsed.password), ("dbname", parsed.database)):
        if value is not None:
            params[key] = value
    params.update(options)
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


class Listener:
    """LISTEN on the channel on a connection of its own; wait() for the next wake-ups.

    Use from one thread at a time. Survives a server restart: a lost connection
    is re-opened (every RECONNECT_EVERY s while the server is away) and wait()
    then returns RECONNECTED, since notifications sent meanwhile are lost. It
    never raises for the server: one that cannot be reached at first is tried
    again at each wait().
    """

    def __init__(self, target: str | Connector, channel: str = CHANNEL, *, connect_timeout: float = 5.0) -> None:
        """`target`: a store URL or libpq connection string, or a function opening a connection."""
        if callable(target):
            self._connect: Connector = target
        else:
            info = conninfo(target) if "://" in target else target
            self._connect = lambda: psycopg.connect(info, autocommit=True, connect_timeout=max(1, round(connect_timeout)))
        self.channel = channel
        self._conn: psycopg.Connection | None = None
        self._next_try = 0.0
        self.last_error = ""  # why the last connection attempt failed (for logs)
        self.reconnects = 0
        self._open()
        # Lost the connection since the last wait() returned; a listener that could not
        # connect at first is "away" too: its first successful wait says RECONNECTED.
        self._away = self._conn is None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def wait(self, timeout: float) -> list[Wakeup]:
        """The wake-ups that arrive within `timeout` seconds: returns at the first (with any
        already queued behind it), or empty after the timeout. Never raises for a lost server."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if self._conn is None:
                self._reopen(deadline)
                if self._conn is None:
                    return []
            if self._away:
                self._away = False
                return [Wakeup(RECONNECTED)] + self._drain(0.0)
            got = self._drain(max(0.0, deadline - time.monotonic()), first=True)
            if got or self._conn is not None:
                return got
            # The connection dropped while waiting: go round to reconnect within the deadline.

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------

    def _open(self) -> None:
        try:
            conn = self._connect()
            conn.autocommit = True
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except psycopg.Error as exc:
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self._conn = None
            return
        self._conn = conn

    def _reopen(self, deadline: float) -> None:
        while self._conn is None:
            now = time.monotonic()
            if now >= self._next_try:
                self._next_try = now + RECONNECT_EVERY
                self._open()
                if self._conn is not None:
                    self.reconnects += 1
                    return
            pause = min(self._next_try, deadline) - time.monotonic()
            if pause <= 0 and time.monotonic() >= deadline:
                return
            time.sleep(max(0.0, pause))

    def _drain(self, timeout: float, first: bool = False) -> list[Wakeup]:
        """Notifications within `timeout` (the first ends the wait); then whatever is already queued."""
        assert self._conn is not None
        out: list[Wakeup] = []
        try:
            if first:
                for n in self._conn.notifies(timeout=timeout, stop_after=1):
                    out.append(parse(n.payload))
                if not out:
                    return out
            for n in self._conn.notifies(timeout=0.0):
                out.append(parse(n.payload))
        except psycopg.Error:
            self._lost()
        return out

    def _lost(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
        except psycopg.Error:
            pass
        self._conn = None
        self._away = True
        self._next_try = 0.0


__all__ = ["CHANNEL", "WHATS", "STOP", "PAUSE", "DELETE", "RESUME", "WORK", "RECONNECTED", "Wakeup",
           "Listener", "conninfo", "notify", "parse", "payload"]
