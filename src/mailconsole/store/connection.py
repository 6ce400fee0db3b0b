"""Opening a store: URL resolution, SQLite pragmas, transactions, schema checks.

SQLite specifics live here and nowhere else. pysqlite's own transaction handling
is switched off so that we emit BEGIN ourselves: writes use BEGIN IMMEDIATE,
which takes SQLite's single write lock up front. That one lock orders every
claim against every stop, so after a stop commits no claim can succeed.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
from sqlalchemy import Connection, create_engine, event, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import identity, lock_holder, schema
from .errors import StoreBusy, StoreError

DEFAULT_BUSY_TIMEOUT_MS = 5000
# How often a writer that must not wait long tries SQLite's write lock again.
LOCK_POLL = 0.0005
Clock = Callable[[], float]


def is_lock_error(error: BaseException | str) -> bool:
    """Whether a driver error (or its text) says another writer holds the lock."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


def begin_immediate_polling(dbapi_conn: object, patience: float, pause: float = LOCK_POLL) -> None:
    """BEGIN IMMEDIATE on a DB-API SQLite connection, trying again every `pause` seconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 ... ms between tries, so a
    writer that finds the lock taken can still be asleep tens of milliseconds after
    it was freed. The connection's busy_timeout must be 0 (or about 1 ms) so that a
    try fails at once. Raises sqlite3.OperationalError ("database is locked") once
    `patience` seconds have passed.
    """
    deadline = time.monotonic() + patience
    while True:
        cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not is_lock_error(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cur.close()
        time.sleep(pause)


def default_db_url() -> str:
    env = os.environ.get("MAILCONSOLE_DB")
    if env:
        return env
    path = Path(platformdirs.user_data_dir("mailconsole")) / "mailconsole.db"
    return str(path)


# The stores this release can open, by SQLAlchemy backend name, and how to name
# them to an operator. A new backend (PostgreSQL) is added here and nowhere else.
SUPPORTED_BACKENDS: dict[str, str] = {"sqlite": "sqlite:///PATH"}
SUPPORTED_STORES = "a SQLite file path or a sqlite:///PATH URL"


def to_url(db: str) -> str:
    """Accept a plain path or an SQLAlchemy URL of a supported backend; StoreError says why not."""
    if not db.strip():
        raise StoreError(f"no store given (an empty --db or $MAILCONSOLE_DB); give {SUPPORTED_STORES}")
    if "\x00" in db:
        raise StoreError(f"the store name holds a NUL character; give {SUPPORTED_STORES}")
    if "://" not in db:
        try:
            return "sqlite:///" + str(Path(db).expanduser().absolute())
        except RuntimeError:  # "~nosuchuser/…": the home directory cannot be found
            raise StoreError(f"cannot resolve store path {db!r}; give {SUPPORTED_STORES}") from None
    try:
        url = make_url(db)
        shown = url.render_as_string(hide_password=True)
        backend = url.get_backend_name()
        # The driver is only asked of a supported backend: asking loads its dialect.
        driver = url.get_driver_name() if backend in SUPPORTED_BACKENDS else ""
    except Exception:  # make_url raises ArgumentError or ValueError on any malformed URL
        raise StoreError(f"{db.split('://')[0]!r}:// is not a store URL; supported: {SUPPORTED_STORES}") from None
    if backend not in SUPPORTED_BACKENDS or (backend == "sqlite" and driver != "pysqlite"):
        raise StoreError(f"unsupported store URL {shown}; supported: {SUPPORTED_STORES}")
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        # An in-memory database: each process would get its own empty one.
        raise StoreError(f"store URL {shown} names no file; supported: {SUPPORTED_STORES}")
    return db


def explain(exc: BaseException, where: str) -> StoreError:
    """Turn a driver error into one line an operator can act on."""
    text = str(getattr(exc, "orig", exc)) or exc.__class__.__name__
    low = text.lower()
    if is_lock_error(low):
        # `where` is the file of an SQLite store (else a URL, whose holder stays unknown).
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


def _pragma(conn: Connection, pragma: str) -> None:
    # Straight to the driver: through SQLAlchemy the statement would autobegin
    # a transaction, and synchronous= must be set outside one.
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")


class Store:
    """One store (database) shared by the console, CLI commands and engines."""

    def __init__(
        self,
        db: str | None = None,
        *,
        clock: Clock = time.time,
        busy_timeout_ms: int | None = None,
        create: bool = True,
        read_only: bool = False,
        check_version: bool = True,
    ) -> None:
        """Open (or create) a store; an older or newer schema is refused.

        check_version=False opens a store of any schema version, for the migration
        only (store/migrate.py): no other code may read or write it then.
        """
        self.url = to_url(db if db is not None else default_db_url())
        if busy_timeout_ms is None:
            # How long a write waits for another writer before failing clearly.
            busy_timeout_ms = int(os.environ.get("MAILCONSOLE_BUSY_TIMEOUT_MS", DEFAULT_BUSY_TIMEOUT_MS))
        self.clock = clock
        self.read_only = read_only
        url = make_url(self.url)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.where = url.database if self.is_sqlite else url.render_as_string(hide_password=True)
        if self.is_sqlite and url.database and url.database != ":memory:":
            self._prepare_sqlite_file(Path(url.database), create)
        self.engine: Engine = self._make_engine(busy_timeout_ms)
        try:
            self._check_schema(create, check_version)
        except DBAPIError as exc:
            self.engine.dispose()
            raise explain(exc, self.where) from None
        except BaseException:
            self.engine.dispose()  # a refused store must not keep the file open
            raise

    # -- setup ---------------------------------------------------------------

    def _prepare_sqlite_file(self, path: Path, create: bool) -> None:
        if path.exists():
            if path.is_dir():
                raise StoreError(f"{path} is a directory, not a store; check --db")
            return
        if not create or self.read_only:
            raise StoreError(f"no store at {path}; create one with `mailconsole init`")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite touches it: the store holds recipients'
        # addresses. SQLite gives its -wal/-shm files the same mode.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)

    def _make_engine(self, busy_timeout_ms: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True)
        connect_args: dict = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
        url = self.url
        if self.read_only:
            url = "sqlite:///file:" + make_url(self.url).database + "?mode=ro&uri=true"
        engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not self.read_only:
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
                self._begin_polling(conn, busy_timeout_ms, patience)
                return
            mode = options.get("sqlite_begin", "")
            conn.exec_driver_sql(f"BEGIN {mode}".strip())

        return engine

    def _begin_polling(self, conn: Connection, busy_timeout_ms: int, patience: float | bool) -> None:
        """BEGIN IMMEDIATE retried every LOCK_POLL for `patience` seconds (True: the busy timeout; see write())."""
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA busy_timeout=0")
        try:
            begin_immediate_polling(driver, busy_timeout_ms / 1000 if patience is True else float(patience))
        except sqlite3.OperationalError as exc:
            raise explain(exc, self.where) from None
        finally:
            driver.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")

    def _check_schema(self, create: bool, check_version: bool = True) -> None:
        with self.engine.connect() as conn:
            tables = self.engine.dialect.get_table_names(conn)
        if "meta" not in tables:
            if tables:
                # Another program's database: adding our tables to it would be a surprise.
                raise StoreError(
                    f"{self.where} is another program's database (no mailconsole tables); check --db"
                )
            if not create or self.read_only:
                raise StoreError(f"{self.where} holds no mailconsole store; create one with `mailconsole init`")
            self._create_schema()
        version = self.schema_version()
        if not check_version:
            return
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"store {self.where} has schema version {version}, newer than this mailconsole "
                f"understands ({schema.SCHEMA_VERSION}); upgrade mailconsole"
            )
        if version < schema.SCHEMA_VERSION:
            raise StoreError(
                f"store {self.where} has schema version {version}, older than this mailconsole's "
                f"({schema.SCHEMA_VERSION}); upgrade it with `mailconsole migrate --db {shlex.quote(self.where)}`"
            )
        if not self.read_only:
            from .accounts import ensure_account  # late: accounts imports this module

            ensure_account(self, "default")

    def _create_schema(self) -> None:
        """A new store: today's tables, stamped with the Alembic revision they correspond to.

        create_all rather than running every migration from the first: one
        transaction, no Alembic import on this path. The migration tests prove that
        an upgraded store and a new one have the same schema.
        """
        with self.write() as conn:
            schema.metadata.create_all(conn)
            schema.alembic_version.create(conn)
            conn.execute(insert(schema.meta).values(key="schema_version", value=str(schema.SCHEMA_VERSION)))
            conn.execute(insert(schema.meta).values(key=identity.KEY, value=identity.new_store_id()))
            conn.execute(
                insert(schema.alembic_version).values(version_num=schema.revision_of(schema.SCHEMA_VERSION))
            )

    def schema_version(self) -> int:
        """The schema version the store records (meta.schema_version); 0 if none."""
        with self.read() as conn:
            row = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).first()
        if row is None:
            return 0
        try:
            return int(row[0])
        except ValueError:
            raise StoreError(
                f"store {self.where} records schema version {row[0]!r}, not a number; check --db"
            ) from None

    # -- transactions ----------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot under WAL)."""
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    yield conn
        except IntegrityError:
            raise  # a bug in a caller, not a property of the store
        except DBAPIError as exc:
            raise explain(exc, self.where) from None

    @contextmanager
    def write(self, *, durable: bool = False, patience: float | None = None) -> Iterator[Connection]:
        """A write transaction holding the write lock from its first statement.

        durable=True syncs the commit to disk (synchronous=FULL) so it survives
        power loss, not only a crash: the emergency stop uses it (and pause, delete).
        Such a write is an operator waiting: it also takes the write lock by trying
        every LOCK_POLL rather than through SQLite's backing-off busy handler, for
        the same busy timeout, so it gets the lock within half a millisecond of an
        engine's transaction ending.

        patience: seconds to wait for the write lock, polling as above, instead of
        the busy timeout; StoreBusy once they have passed. A caller that retries
        by itself (store/retry.py) uses it to report between tries.
        """
        if self.read_only:
            raise StoreError("this console is read-only; restart it without --read-only to change anything")
        poll: float | bool = durable if patience is None else max(patience, 1e-6)
        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn.execution_options(sqlite_begin="IMMEDIATE", sqlite_lock_poll=poll)
                    if durable:
                        _pragma(conn, "synchronous=FULL")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    if self.is_sqlite and durable:
                        _pragma(conn, "synchronous=NORMAL")
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise explain(exc, self.where) from None

    def now(self) -> float:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()
