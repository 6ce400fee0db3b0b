"""SQLite: one file on one host; one write lock orders every claim against every stop.

pysqlite's own transaction handling is switched off so that we emit BEGIN
ourselves: writes use BEGIN IMMEDIATE, which takes SQLite's single write lock up
front. That one lock orders every claim against every stop, so after a stop
commits no claim can succeed; the claim needs no guard of its own.

The dot fence is an advisory file lock beside the store (flock: released by the
kernel when a process dies), and stop intents live in a directory beside it:
both need every engine on the same host, which a local file implies.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from ..errors import StoreBusy, StoreError
from . import Backend, Fence, FenceResult
from . import sqlite_lock_holder as lock_holder

if TYPE_CHECKING:
    from ..connection import Store

# How often a writer that must not wait long tries SQLite's write lock again.
LOCK_POLL = 0.0005
# The gate's read runs on the engine's event loop; see raw_reader.
READ_BUSY_TIMEOUT_MS = 20


def is_lock_error(error: BaseException | str) -> bool:
    """Whether a driver error (or its text) says another writer holds the lock."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


def begin_immediate_polling(dbapi_conn: Any, patience: float, pause: float = LOCK_POLL) -> None:
    """BEGIN IMMEDIATE on a DB-API SQLite connection, trying again every `pause` seconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ... ms between tries, so a
    writer that finds the lock taken can still be asleep tens of milliseconds after
    it was freed. The connection's busy_timeout must be 0 (or about 1 ms) so that a
    try fails at once. Raises sqlite3.OperationalError ("database is locked") once
    `patience` seconds have passed.
    """
    deadline = time.monotonic() + patience
    while True:
        cur = dbapi_conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cur.close()
        time.sleep(pause)


def _pragma(conn: Connection, pragma: str) -> None:
    # Straight to the driver: through SQLAlchemy the statement would autobegin
    # a transaction, and synchronous= must be set outside one.
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")  # type: ignore[union-attr]


class SQLite(Backend):
    name = "sqlite"
    backs_up = True
    url_form = "sqlite:///PATH"
    access_is = "an SQLite store's access is its file's permissions"

    @classmethod
    def url_of(cls, path: Path) -> str:
        return "sqlite:///" + str(path)

    @classmethod
    def check(cls, url: Any, shown: str) -> None:
        from . import supported_stores

        if url.get_driver_name() != "pysqlite":
            raise StoreError(f"unsupported store URL {shown}; supported: {supported_stores()}")
        if url.database in (None, "", ":memory:"):
            # An in-memory database: each process would get its own empty one.
            raise StoreError(f"store URL {shown} names no file; supported: {supported_stores()}")

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._busy_timeout_ms = 5000
        self._read_only = False

    @property
    def where(self) -> str:
        return str(self._parsed.database)

    @property
    def file(self) -> Path | None:
        db = self._parsed.database
        if not db or db == ":memory:" or db.startswith("file:"):
            return None
        return Path(db)

    @property
    def intent_dir(self) -> str | None:
        return f"{self.file}-stop-intents" if self.file else None

    @property
    def fence_path(self) -> str | None:
        return f"{self.file}-dots.lock" if self.file else None

    # -- connection set-up --------------------------------------------------

    def prepare(self, *, create: bool, read_only: bool) -> None:
        path = self.file
        if path is None:
            return
        if path.exists():
            if path.is_dir():
                raise StoreError(f"{path} is a directory, not a store; check --db")
            return
        if not create or read_only:
            raise StoreError(f"no store at {path}; create one with `mailconsole init`")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite touches it: the store holds recipients'
        # addresses. SQLite gives its -wal/-shm files the same mode.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)

    def create_engine(self, *, busy_timeout_ms: int, read_only: bool) -> Engine:
        self._busy_timeout_ms = busy_timeout_ms
        self._read_only = read_only
        connect_args: dict = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        url = self.url
        if read_only:
            url = "sqlite:///file:" + str(self._parsed.database) + "?mode=ro&uri=true"
        engine = sa_create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not read_only:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            options = conn.get_execution_options()
            patience = options.get("sqlite_lock_poll")
            if patience:
                self._begin_polling(conn, patience)
                return
            mode = options.get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine

    def _begin_polling(self, conn: Connection, patience: float | bool) -> None:
        """BEGIN IMMEDIATE retried every LOCK_POLL for `patience` seconds (True: the busy timeout)."""
        driver: Any = conn.connection.driver_connection
        driver.execute("PRAGMA busy_timeout=0")
        try:
            begin_immediate_polling(driver, self._busy_timeout_ms / 1000 if patience is True else float(patience))
        except sqlite3.OperationalError as exc:
            raise self.explain(exc) from None
        finally:
            driver.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")

    @contextmanager
    def writing(self, conn: Connection, *, durable: bool, patience: float | bool) -> Iterator[None]:
        """BEGIN IMMEDIATE (polled when `patience`); synchronous=FULL for a durable commit."""
        conn.execution_options(sqlite_begin="IMMEDIATE", sqlite_lock_poll=patience)
        if durable:
            _pragma(conn, "synchronous=FULL")
        try:
            yield
        finally:
            if durable:
                _pragma(conn, "synchronous=NORMAL")

    # -- claims against stops: the write lock orders them ------------------------

    def pick(self, query: Select[Any]) -> ColumnElement[Any]:
        return query.scalar_subquery()

    # -- the gate's read and the acknowledgement ---------------------------------

    def raw_reader(self, engine: Engine) -> Any:
        raw = engine.raw_connection()
        # The engine runs this read on its event loop. WAL readers do not wait for
        # writers; the rare waits (WAL recovery, an exclusive lock) are cut short
        # so the loop never stalls for the store's full busy timeout: the read
        # fails, and the gate holds every dot until a read succeeds.
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        cur.close()
        return raw

    def raw_writer(self, engine: Engine) -> Any:
        raw = engine.raw_connection()
        cur = raw.cursor()
        cur.execute("PRAGMA busy_timeout=0")  # every try fails at once; begin_raw_write polls
        cur.close()
        return raw

    def begin_raw_write(self, raw: Any, patience: float) -> None:
        """Without SQLite's backoff: under its busy handler a writer that finds the lock
        taken sleeps 1, 2, 5, 10, 15 ... ms between tries; this tries every LOCK_POLL."""
        begin_immediate_polling(raw, patience)

    def commit_raw_write(self, raw: Any, cursor: Any) -> None:
        cursor.execute("COMMIT")

    # -- the dot fence: a file lock beside the store -----------------------------

    def fence(self) -> Fence:
        return FileFence(self.fence_path)

    def wait_for_dots(self, store: Store, timeout: float) -> FenceResult:
        """Polls for the exclusive lock rather than blocking on it, so that it never
        queues ahead of engines and gives up after `timeout` (an engine stuck
        mid-dot, allowed before the stop)."""
        path = self.fence_path
        if path is None:
            return FenceResult(True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return FenceResult(False)
                    time.sleep(0.0002)
                    continue
                fcntl.flock(fd, fcntl.LOCK_UN)
                return FenceResult(True)
        finally:
            os.close(fd)

    # -- errors -----------------------------------------------------------------

    def is_driver_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def explain(self, exc: BaseException) -> StoreError:
        where = self.where
        text = str(getattr(exc, "orig", exc)) or exc.__class__.__name__
        low = text.lower()
        if is_lock_error(low):
            holder = lock_holder.describe(where)
            if holder is None:
                return StoreBusy(f"store {where} is locked by another writer; retry, or find the process holding it")
            return StoreBusy(f"store {where} is locked by another writer, {holder}; retry once it is done", holder)
        if "not a database" in low or "malformed" in low or "corrupt" in low:
            return StoreError(f"{where} is not a mailconsole store (corrupt or another kind of file); check --db")
        if "readonly" in low or "read-only" in low:
            return StoreError(f"store {where} is read-only; check the file's permissions or use --read-only")
        if "unable to open" in low:
            return StoreError(f"cannot open store {where}; check that its directory exists and is writable")
        if "disk" in low and "full" in low:
            return StoreError(f"disk full while writing store {where}; free space and retry")
        if "disk i/o error" in low:
            # What SQLite reports when the OS refuses a write to an open file (EPERM on an
            # immutable file, EROFS, EIO): the usual causes, so the operator knows where to look.
            return StoreError(f"store {where}: disk I/O error; is the file or its file system read-only, or the disk failing?")
        return StoreError(f"store {where}: {text.splitlines()[0]}")

    # -- backups ------------------------------------------------------------------

    def backup(self, store: Store, version: int) -> Path:
        """Copy the store beside itself before it is changed; returns the copy's path.

        SQLite's backup API reads a consistent snapshot (under WAL it does not block
        writers, nor take the write lock). The copy is a self-contained file (no WAL)
        created 0600 like the store, since it holds the same addresses.
        """
        source = Path(self.where)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = source.with_name(f"{source.stem}.schema-{version}-backup-{stamp}{source.suffix or '.db'}")
        try:
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            raise StoreError(f"backup {target} exists already; try again in a second") from None
        except OSError as exc:
            raise StoreError(f"cannot write the backup {target}: {exc.strerror}; nothing changed") from None
        os.close(fd)
        pooled = store.engine.raw_connection()
        try:
            with closing(sqlite3.connect(target)) as dst:
                pooled.driver_connection.backup(dst)  # type: ignore[union-attr]
                dst.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)
            raise StoreError(f"cannot back up store {self.where} to {target}: {exc}; nothing changed") from None
        finally:
            pooled.close()
        return target


class FileFence(Fence):
    """An engine's shared flock on the fence file, counted across its workers.

    The first worker to arrive at the gate takes the shared lock, the last one
    to leave releases it; in between, holding costs nothing.
    """

    def __init__(self, path: str | None) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600) if path else None
        self._holders = 0
        self._lock = threading.Lock()

    def hold(self) -> None:
        if self._fd is None:
            return
        with self._lock:
            if self._holders == 0:
                # Blocks only while a stop holds the lock exclusively: microseconds.
                fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._holders += 1

    def release(self) -> None:
        if self._fd is None:
            return
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
