"""PostgreSQL (psycopg 3): one store for engines on many hosts.

Three things SQLite gave for free are built here (the argument is in
docs/scale-out.md):

- **Claims ordered against stops.** Under READ COMMITTED a claim statement that
  began before a stop's commit can still see "not stopped". So a claim first
  takes a *shared* transaction-level advisory lock per account, and only then
  runs its claim statement, whose snapshot is therefore taken after any stop it
  waited for had committed; a stop (pause, delete) takes the *exclusive* lock of
  its account first. Advisory locks queue fairly: a claim arriving while a stop
  waits queues behind it, so claims cannot starve a stop (row locks can).
- **Claims that skip each other**: the rows are picked with FOR UPDATE SKIP LOCKED
  in a CTE (River's and Oban's shape; the CTE keeps the planner from running the
  limited pick more than once).
- **A dot fence across hosts**: no local lock can see another host's dots, so a
  stop waits for every live engine to acknowledge it, for a bounded time, and
  names the engines it could not confirm (see `wait_for_dots`).

The password comes from the URL, PGPASSWORD or ~/.pgpass (libpq reads them
itself) and is never shown: `where` masks it. libpq options in the URL's query
(sslmode, sslrootcert, target_session_attrs, …) pass through to the driver.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, select, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Engine

from ..errors import StoreBusy, StoreError
from . import Backend, FenceResult, NoFence, Unconfirmed

if TYPE_CHECKING:
    from ..connection import Store

# The first key of the two-key advisory locks this program takes ("mc");
# the second is the account id.
LOCK_CLASS = 0x6D63
# Connections per process. An engine holds two dedicated ones (the gate's read
# and the acknowledgement) and uses a few pooled ones from its threads; a console
# or a command fewer. Small, so that dozens of engine hosts fit the server's
# max_connections (100 by default): about 8 per process at most.
POOL_SIZE = 4
MAX_OVERFLOW = 4
# Seconds before an attempt to reach the server gives up ("unreachable").
CONNECT_TIMEOUT = 5
# A connection that stops answering (a cut link, a host gone) is declared dead
# after this long, instead of the kernel's TCP timeouts of minutes (libpq's
# keepalives and tcp_user_timeout): the engine's gate read fails and holds every dot.
DEAD_AFTER_MS = 1000
# A session idle inside a transaction for this long is ended by the server, which
# frees its locks (see create_engine): as long as an engine's fail-closed deadline,
# so a frozen engine holds a stop up no longer than it could still send.
IDLE_IN_TRANSACTION_MS = 1000
# An engine silent for longer than this is gone (its leases have long expired) and
# not waited for; one silent for less is waited for, and named if it does not confirm.
_GONE_AFTER = 60.0


def _masked(url: Any) -> str:
    """The URL without any password (in its user part or its query)."""
    query = {k: ("***" if k == "password" else v) for k, v in url.query.items()}
    return str(url.set(query=query).render_as_string(hide_password=True))


class PostgreSQL(Backend):
    name = "postgresql"
    url_form = "postgresql+psycopg://USER@HOST/DB"
    # A bulk transaction takes row locks only, which no stop waits for (a stop waits
    # for claims: exclude_claims). What it costs is its round trips, ~5 a batch at
    # 1-4 ms each: aiming at SQLite's 10 ms shrank an import's batches to 10 rows,
    # 700 recipients a second. Its WAL is synced by its own durable commit, so
    # what a stop's commit has to flush stays one batch's worth.
    bulk_seconds = 0.100

    @classmethod
    def check(cls, url: Any, shown: str) -> None:
        from . import supported_stores

        if url.get_driver_name() != "psycopg":
            raise StoreError(f"unsupported store URL {_masked(url)}; supported: {supported_stores()}")
        if not url.database:
            raise StoreError(f"store URL {_masked(url)} names no database; give postgresql+psycopg://USER@HOST/DB")

    @property
    def where(self) -> str:
        return _masked(self._parsed)

    # -- connection set-up --------------------------------------------------

    def create_engine(self, *, busy_timeout_ms: int, read_only: bool) -> Engine:
        self._busy_timeout_ms = busy_timeout_ms
        given = set(self._parsed.query)
        connect_args: dict[str, Any] = {}
        # Our defaults for what the URL does not set itself (its query passes to libpq).
        for key, value in (("connect_timeout", CONNECT_TIMEOUT), ("application_name", "mailconsole"),
                           ("keepalives", 1), ("keepalives_idle", 1), ("keepalives_interval", 1),
                           ("keepalives_count", 3), ("tcp_user_timeout", DEAD_AFTER_MS)):
            if key not in given:
                connect_args[key] = value
        # A session that leaves a transaction open and goes quiet (its engine frozen, its
        # host cut off: its TCP may stay up for hours) would keep its locks, and a stop
        # would wait behind a claim's advisory lock for as long. The server ends such a
        # session after IDLE_IN_TRANSACTION_MS: no transaction of ours waits that long
        # between two statements (none streams rows or waits on anything but the server).
        # Both come after the URL's own options, and so override them.
        options = (f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
                   f" -c lock_timeout={int(busy_timeout_ms)}")
        if read_only:
            # What --read-only means here: the server refuses every write of the session.
            options += " -c default_transaction_read_only=on"
        connect_args["options"] = (self._parsed.query.get("options", "") + " " + options).strip()
        return sa_create_engine(
            self.url, connect_args=connect_args,
            # A connection found dead (the server restarted) is replaced before use.
            pool_pre_ping=True, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
            pool_timeout=busy_timeout_ms / 1000,
        )

    @contextmanager
    def writing(self, conn: Connection, *, durable: bool, patience: float | bool) -> Iterator[None]:
        yield

    def write_began(self, conn: Connection, *, durable: bool, patience: float | bool) -> None:
        if durable:
            # Whatever the server's default: the stop's commit must be on disk (and, with
            # synchronous replicas configured, on them) before it is reported.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = on")
        if patience is not False and patience is not True:
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(float(patience) * 1000))}")

    # -- claims against stops ------------------------------------------------

    def claim_guard(self, conn: Connection) -> Sequence[int]:
        """Shared advisory locks on every account, in id order (so that claims and
        stops never deadlock), before the claim statement takes its snapshot."""
        rows = conn.execute(
            text("SELECT id, pg_advisory_xact_lock_shared(:k, id) FROM "
                 "(SELECT id FROM accounts ORDER BY id OFFSET 0) AS a"),  # OFFSET 0: locked in this order
            {"k": LOCK_CLASS},
        ).all()
        return [r[0] for r in rows]

    def exclude_claims(self, conn: Connection, account_id: int) -> None:
        """The account's exclusive advisory lock: waits for the claims holding it shared
        (each a few ms), and every claim arriving meanwhile waits for this transaction."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:k, :a)"), {"k": LOCK_CLASS, "a": account_id})

    def pick(self, query: Select[Any]) -> Select[Any]:
        picked = query.with_for_update(skip_locked=True).cte("picked")
        return select(picked.c.id)

    # -- the gate's read and the acknowledgement ---------------------------------

    def raw_reader(self, engine: Engine) -> Any:
        # In autocommit, the gate's one statement is one round trip: no BEGIN before it
        # and no ROLLBACK after it (~80 µs over loopback against ~300 µs with them),
        # and no transaction left open holding its tables' locks. Detached from the
        # pool (a plain psycopg connection), so it is never lent to another user.
        pooled = engine.raw_connection()
        pooled.detach()
        raw = pooled.dbapi_connection
        raw.autocommit = True
        return raw

    def raw_writer(self, engine: Engine) -> Any:
        return engine.raw_connection()

    def begin_raw_write(self, raw: Any, patience: float) -> None:
        cur = raw.cursor()
        try:
            cur.execute(f"SET LOCAL lock_timeout = {max(1, int(patience * 1000))}")
        finally:
            cur.close()

    def commit_raw_write(self, raw: Any, cursor: Any) -> None:
        raw.commit()

    # -- the dot fence: the engines' acknowledgements ------------------------------

    def fence(self) -> NoFence:
        return NoFence()

    def wait_for_dots(self, store: Store, timeout: float) -> FenceResult:
        """Wait until every engine not gone has acknowledged every stop generation committed.

        An engine acknowledges a generation only once a gate read showing it has
        completed and no dot allowed by an older read is still being written
        (engine/gate.py), so an acknowledgement is the engine's own fence. An engine
        that does not acknowledge within `timeout` (a host cut off, a process frozen)
        is named, with the time after which it is certain to send nothing allowed
        before the stop: the stop's commit plus the engines' fail-closed deadline
        (a gate answer older than that is never used for a dot).
        """
        # The clock starts before the import: loading the engine's modules takes most of a
        # second on a loaded host, and the bound is the stop's promise from its commit.
        committed = store.now()
        deadline = time.monotonic() + timeout
        from ...engine.gate import FAIL_CLOSED_AFTER  # the engines' stated deadline

        while True:
            pending = self._unacknowledged(store)
            if not pending:
                return FenceResult(True)
            if time.monotonic() >= deadline:
                return FenceResult(False, tuple(
                    Unconfirmed(e_id, host, pid, last, committed + FAIL_CLOSED_AFTER)
                    for e_id, host, pid, last in pending))
            time.sleep(0.005)

    def _unacknowledged(self, store: Store) -> list[tuple[str, str, int, float]]:
        now = store.now()
        with store.read() as conn:
            stopped = dict(conn.execute(text("SELECT id, generation FROM accounts WHERE stopped")).all())
            rows = conn.execute(text(
                "SELECT id, host, pid, heartbeat_at, acknowledged FROM engines WHERE state <> 'stopped'")).all()
        out = []
        for e_id, host, pid, beat, acked in rows:
            if now - beat > _GONE_AFTER:
                continue
            try:
                honoured = {int(k): int(v) for k, v in json.loads(acked).items()}
            except (ValueError, TypeError, AttributeError):
                honoured = {}
            if any(honoured.get(acc, 0) < gen for acc, gen in stopped.items()):
                out.append((e_id, host, pid, beat))
        return out

    # -- wake-ups: LISTEN/NOTIFY --------------------------------------------------

    def listener(self) -> Any:
        from .pg_notify import Listener

        return Listener(self.url)

    @classmethod
    def wake(cls, conn: Connection, what: str, details: dict[str, object]) -> None:
        from .pg_notify import notify

        notify(conn, what, **details)

    # -- access control: roles (store/roles.py) -----------------------------------

    def roles_database(self) -> str:
        if not self._parsed.database:
            raise StoreError("the store URL names no database (…/DBNAME)")
        return str(self._parsed.database)

    # -- errors -----------------------------------------------------------------

    def is_driver_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)

    def explain(self, exc: BaseException) -> StoreError:
        import psycopg
        from psycopg import errors as pg

        where = self.where
        orig = getattr(exc, "orig", exc)
        text_ = (str(orig) or orig.__class__.__name__).strip()
        first = text_.splitlines()[0] if text_ else orig.__class__.__name__
        low = text_.lower()
        password = self._parsed.password
        if password:
            first = first.replace(str(password), "***")
        if isinstance(orig, (pg.LockNotAvailable, pg.DeadlockDetected, pg.SerializationFailure)) or (
            isinstance(orig, pg.QueryCanceled) and "lock timeout" in low
        ):
            return StoreBusy(f"store {where} is locked by another writer; retry once it is done")
        if isinstance(orig, pg.InsufficientPrivilege):
            return StoreError(f"store {where}: permission denied ({first}); check the role in --db")
        if isinstance(orig, pg.ReadOnlySqlTransaction):
            return StoreError(f"store {where} is read-only here; restart without --read-only to change anything")
        if isinstance(orig, pg.UndefinedTable):
            return StoreError(f"store {where} holds no mailconsole store (or another schema); check --db")
        if isinstance(orig, psycopg.OperationalError):
            if "password authentication failed" in low or "no password supplied" in low:
                return StoreError(f"cannot log in to store {where}: wrong or missing password "
                                  "(give it in PGPASSWORD or ~/.pgpass)")
            if "does not exist" in low and "database" in low:
                return StoreError(f"store {where}: the database does not exist; create it (createdb) first")
            if "role" in low and "does not exist" in low:
                return StoreError(f"store {where}: {first}; check the user in --db")
            if any(s in low for s in ("connection refused", "could not translate host name", "failed to resolve host",
                                      "timeout expired",
                                      "no route to host", "network is unreachable", "could not connect",
                                      "connection failed", "server closed the connection", "connection timed out",
                                      "terminating connection", "consuming input failed", "connection is lost",
                                      "the connection is closed")):
                return StoreError(f"cannot reach store {where}: the server is unreachable or restarting; retry")
        return StoreError(f"store {where}: {first}")
