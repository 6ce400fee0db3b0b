"""Opening a store: URL resolution, transactions, schema checks.

What differs between the database engines (pragmas or session settings, how a
write begins, error translation) is the store's backend (store/backends/),
chosen from the URL once, here.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
from sqlalchemy import Connection, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from . import backends, identity, schema
from .errors import StoreError

DEFAULT_BUSY_TIMEOUT_MS = 5000
Clock = Callable[[], float]


def default_db_url() -> str:
    env = os.environ.get("MAILCONSOLE_DB")
    if env:
        return env
    path = Path(platformdirs.user_data_dir("mailconsole")) / "mailconsole.db"
    return str(path)


# How to name the stores this release can open to an operator, and by backend name
# (the backends themselves are in store/backends/).
SUPPORTED_STORES = backends.supported_stores()
SUPPORTED_BACKENDS: dict[str, str] = {"sqlite": "sqlite:///PATH", "postgresql": "postgresql+psycopg://USER@HOST/DB"}


def to_url(db: str) -> str:
    """Accept a plain path or an SQLAlchemy URL of a supported backend; StoreError says why not."""
    if not db.strip():
        raise StoreError(f"no store given (an empty --db or $MAILCONSOLE_DB); give {SUPPORTED_STORES}")
    if "\x00" in db:
        raise StoreError(f"the store name holds a NUL character; give {SUPPORTED_STORES}")
    if "://" not in db:
        try:
            return backends.path_url(Path(db).expanduser().absolute())
        except RuntimeError:  # "~nosuchuser/…": the home directory cannot be found
            raise StoreError(f"cannot resolve store path {db!r}; give {SUPPORTED_STORES}") from None
    try:
        url = make_url(db)
        url.render_as_string(hide_password=True)
        url.get_backend_name()
    except Exception:  # make_url raises ArgumentError or ValueError on any malformed URL
        raise StoreError(f"{db.split('://')[0]!r}:// is not a store URL; supported: {SUPPORTED_STORES}") from None
    backends.check_url(db)
    return db


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
        self.backend = backends.for_url(self.url)
        self.where = self.backend.where
        self.backend.prepare(create=create, read_only=read_only)
        self.engine: Engine = self.backend.create_engine(busy_timeout_ms=busy_timeout_ms, read_only=read_only)
        try:
            self._check_schema(create, check_version)
        except DBAPIError as exc:
            self.engine.dispose()
            raise self.backend.explain(exc) from None
        except BaseException:
            self.engine.dispose()  # a refused store must not keep the file open
            raise

    # -- setup ---------------------------------------------------------------

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
            raise self.backend.explain(exc) from None

    @contextmanager
    def write(self, *, durable: bool = False, patience: float | None = None) -> Iterator[Connection]:
        """A write transaction holding the write lock from its first statement.

        durable=True syncs the commit to disk (synchronous=FULL) so it survives
        power loss, not only a crash: the emergency stop uses it (and pause, delete).
        Such a write is an operator waiting: on SQLite it also takes the write lock
        by trying every half millisecond rather than through SQLite's backing-off
        busy handler, for the same busy timeout (store/backends/sqlite.py).

        patience: seconds to wait for the write lock, polling as above, instead of
        the busy timeout; StoreBusy once they have passed. A caller that retries
        by itself (store/retry.py) uses it to report between tries.
        """
        if self.read_only:
            raise StoreError("this console is read-only; restart it without --read-only to change anything")
        poll: float | bool = durable if patience is None else max(patience, 1e-6)
        try:
            with self.engine.connect() as conn:
                with self.backend.writing(conn, durable=durable, patience=poll):
                    with conn.begin():
                        self.backend.write_began(conn, durable=durable, patience=poll)
                        yield conn
        except IntegrityError:
            raise
        except DBAPIError as exc:
            raise self.backend.explain(exc) from None

    def now(self) -> float:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()
