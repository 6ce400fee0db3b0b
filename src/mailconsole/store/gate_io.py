"""The engine's two latency-critical statements, on dedicated DB-API connections.

The final-dot gate reads the stop state thousands of times a second, and the
acknowledgement of a stop must reach the store within milliseconds even while
other engines hold the write lock. Both trade SQLAlchemy's pooled connections
for one prepared connection each (set up by the store's backend); the SQL is
still compiled from the Core tables. A connection that fails is dropped and
opened again at the next call, so both follow a database server that restarted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Integer, bindparam, cast, null, select, union_all, update
from sqlalchemy import literal as constant

from . import stop_intent, suppressions
from .connection import Store
from .errors import StoreBusy, StoreError
from .queue import Control
from .schema import accounts, engines, mailings, meta
from .schema import suppressions as suppressions_table

# Mailings that can have claimed messages or be claimed from; a mailing becomes
# "sent" only with nothing claimed, and a deleted one is simply absent (may not send).
_ACTIVE = ("sending", "paused", "planned", "preparing")


class _Raw:
    """One dedicated DB-API connection, opened on first use and again after a failure."""

    def __init__(self, store: Store, open_: Any) -> None:
        self._store = store
        self._open = open_
        self._conn: Any = None

    def get(self) -> Any:
        if self._conn is None:
            try:
                self._conn = self._open(self._store.engine)
            except Exception as exc:
                raise self._translate(exc) from None
        return self._conn

    @contextmanager
    def reading(self, *, end: bool = True) -> Iterator[Any]:
        """A cursor on the connection, rolled back after (`end`: the read begun on it is over).

        A failure drops the connection (the next read opens a new one) and is
        raised as the store's error, so the gate sees one kind of failure.
        """
        raw = self.get()
        try:
            cur = raw.cursor()
            try:
                yield cur
            finally:
                cur.close()
                if end:
                    raw.rollback()
        except Exception as exc:
            self.failed()
            raise self._translate(exc) from None

    def failed(self) -> None:
        """Drop the connection after an error: the next call opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:  # a pooled connection is invalidated (closed, its place freed); a plain one closed
                getattr(conn, "invalidate", conn.close)()
            except Exception:
                pass

    def _translate(self, exc: BaseException) -> BaseException:
        backend = self._store.backend
        if isinstance(exc, StoreError) or not backend.is_driver_error(getattr(exc, "orig", exc)):
            return exc
        return backend.explain(exc)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ControlReader:
    """The gate's read of the stop state, cheap enough to run thousands of times a second.

    Through a pooled SQLAlchemy connection one read costs about 0.4 ms; on one
    dedicated DB-API connection, with SQL compiled once from the same Core
    statements, about 10 µs. Use from one thread at a time; close() when done.
    """

    def __init__(self, store: Store) -> None:
        dialect = store.engine.dialect
        # The three reads as one statement: a statement is its own snapshot on both
        # backends, and it is one round trip to a server (PostgreSQL over TCP: three
        # statements and their transaction cost ~4 ms under load, one ~1 ms). The
        # columns have one type each across the parts: (tag, id, text, int, int).
        self._sql = str(union_all(
            select(constant(0), accounts.c.id, null(), cast(accounts.c.stopped, Integer), accounts.c.generation),
            select(constant(1), mailings.c.id, mailings.c.status, mailings.c.account_id, null())
            .where(mailings.c.status.in_(_ACTIVE)),
            select(constant(2), null(), meta.c.value, null(), null()).where(meta.c.key == suppressions.MARK_KEY),
        ).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        suppressed = select(suppressions_table.c.email).where(
            suppressions_table.c.account_id == bindparam("account_id"), suppressions_table.c.email == bindparam("email"))
        self._suppressed = suppressed.compile(dialect=dialect)
        self._intents = stop_intent.intent_dir(store)
        self._raw = _Raw(store, store.backend.raw_reader)
        self._raw.get()

    def read(self) -> Control:
        """The stop state; an account with a live stop intent counts as stopped.

        The intents are listed *before* the store is read: an intent removed
        before the listing was removed after its stop committed, so the read
        that follows sees that stop (store/stop_intent.py). One listdir of an
        empty directory: a few µs.
        """
        intents = stop_intent.held(self._intents)
        # No transaction is open on the reader (autocommit: store/backends/), so the
        # rollback after the statement sends nothing; it is there for a failed read.
        with self._raw.reading() as cur:
            cur.execute(self._sql)
            rows = cur.fetchall()
        generations: dict[int, int] = {}
        stopped: set[int] = set()
        status: dict[int, tuple[str, int]] = {}
        mark = 0
        for tag, key, text, number, generation in rows:
            if tag == 1:
                status[key] = (text, number)
            elif tag == 0:
                generations[key] = generation
                if number:
                    stopped.add(key)
            else:
                mark = int(text)
        if intents:
            # Stopped for sending, not for acknowledging: the generations stay the
            # store's, so no engine acknowledges a stop the store has not recorded.
            stopped |= stop_intent.held_accounts(intents, generations)
        return Control(generations, frozenset(stopped), status, mark)

    def suppressed(self, account_id: int, email: str) -> bool:
        """Whether the address is suppressed now (a read begun after this call; a primary-key lookup).

        Asked at the final-dot gate only for a message claimed before a newer
        suppression mark, which is rare; raises like `read` when the store can't be read.
        """
        params = self._suppressed.construct_params({"account_id": account_id, "email": email})
        args = tuple(params[k] for k in self._suppressed.positiontup) if self._suppressed.positional else params
        with self._raw.reading() as cur:
            cur.execute(str(self._suppressed), args)
            return cur.fetchone() is not None

    def close(self) -> None:
        self._raw.close()


class AckWriter:
    """Writes a stop acknowledgement into the engine's heartbeat row, on its own connection.

    On SQLite, under its busy handler a writer that finds the lock taken sleeps
    1, 2, 5, 10, 15 ... ms between tries, so with several busy engines an
    acknowledgement could wait tens of milliseconds after the lock is free; the
    backend's `begin_raw_write` tries again every half millisecond instead, for
    up to `patience` seconds. Use from one thread at a time; close() when done.
    """

    def __init__(self, store: Store, patience: float = 5.0) -> None:
        stmt = (
            update(engines)
            .where(engines.c.id == bindparam("engine_id"))
            .values(acknowledged=bindparam("ack"), heartbeat_at=bindparam("at"), in_flight=bindparam("in_flight"))
        )
        self._compiled = stmt.compile(dialect=store.engine.dialect)
        self._sql = str(self._compiled)
        self._store = store
        self._backend = store.backend
        self._patience = patience
        self._raw = _Raw(store, self._backend.raw_writer)
        self._raw.get()

    def write(self, engine_id: str, acknowledged: dict[int, int], in_flight: int) -> None:
        params = self._compiled.construct_params({
            "engine_id": engine_id, "ack": json.dumps({str(k): v for k, v in acknowledged.items()}),
            "at": self._store.now(), "in_flight": in_flight,
        })
        args = tuple(params[k] for k in self._compiled.positiontup) if self._compiled.positional else params
        raw = self._raw.get()
        try:
            self._backend.begin_raw_write(raw, self._patience)
            cur = raw.cursor()
            try:
                cur.execute(self._sql, args)
                self._backend.commit_raw_write(raw, cur)
            finally:
                cur.close()
        except Exception as exc:
            error = self._raw._translate(exc)
            try:
                raw.rollback()
            except Exception:
                self._raw.failed()
            if isinstance(error, StoreBusy):
                raise StoreBusy(f"{error}; acknowledgement delayed", error.holder) from None
            if isinstance(error, StoreError):
                self._raw.failed()
                raise error from None
            raise

    def close(self) -> None:
        self._raw.close()
