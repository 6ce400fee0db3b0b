"""What differs between the stores' database engines, behind one small interface.

The rest of the store, the engine and the console talk SQLAlchemy Core and this
interface; they never ask which database they run on. One module per backend:

    sqlite.py      one file on one host: BEGIN IMMEDIATE orders everything, flock fences dots
    postgresql.py  many hosts: advisory locks order claims against stops, engines acknowledge

`for_url` picks the backend from the store's URL, once, when the store opens.

The contract, in the order a message meets it:

- **connection set-up** (`create_engine`, `writing`): pragmas or session
  settings; a write transaction that is ordered against every other write the
  way the backend needs, durable when asked, waiting `patience` seconds at most
  for a lock before StoreBusy.
- **claims against stops** (`claim_guard`, `pick`, `exclude_claims`): a claim
  calls `claim_guard` first in its transaction and limits itself to the accounts
  it returns; a stop, pause or delete calls `exclude_claims` first in its own.
  Together they guarantee: a claim that commits after the stop's commit saw the
  stop. `pick` turns the claim's choice of rows into what its UPDATE matches
  (SKIP LOCKED where there are row locks).
- **the gate's cheap read and the acknowledgement** (`raw_reader`, `raw_writer`,
  `begin_raw_write`): dedicated DB-API connections for the two statements an
  engine runs thousands of times a second or must land within milliseconds.
- **the dot fence** (`fence`, `wait_for_dots`): after a stop's commit, the stop
  learns that no engine can still write a dot allowed before it, or names the
  engines it could not confirm and when they are certain to have stopped.
- **errors** (`explain`): a driver error as one line an operator can act on;
  StoreBusy for a lock wait that may succeed later.
- **wake-ups** (`listener`, `wake`): hints that the stop state or the work changed, so
  that engines and consoles read now rather than at their next poll (pg_notify.py).
- **access control** (`roles_database`): whether the store has roles of its own
  (store/roles.py), or its access is something else (a file's permissions).
- **what lives beside a local file** (`file`, `intent_dir`, `backup`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql.elements import ColumnElement

from ..errors import StoreError

if TYPE_CHECKING:
    from ..connection import Store


@dataclass(frozen=True)
class Unconfirmed:
    """An engine a stop could not confirm within its bound."""

    engine_id: str
    host: str
    pid: int
    last_contact: float  # its last heartbeat or acknowledgement (store clock, epoch s)
    certain_by: float  # when no dot allowed before the stop can be written any more (epoch s)

    def as_dict(self) -> dict:
        return {"engine": self.engine_id, "host": self.host, "pid": self.pid,
                "last_contact": self.last_contact, "certain_by": self.certain_by}


@dataclass(frozen=True)
class FenceResult:
    """What a stop learnt about dots allowed before its commit."""

    passed: bool  # every engine confirmed: no such dot can still be written
    unconfirmed: tuple[Unconfirmed, ...] = field(default=())


class Fence(ABC):
    """An engine's hold on the dot fence, from a worker's arrival at the gate to its dot.

    Counted across the engine's workers; `hold` may block only while a stop
    passes the fence (microseconds).
    """

    @abstractmethod
    def hold(self) -> None: ...

    @abstractmethod
    def release(self) -> None: ...

    def close(self) -> None:
        pass


class NoFence(Fence):
    """For a backend whose fence is the engines' acknowledgements: nothing to hold locally."""

    def hold(self) -> None:
        pass

    def release(self) -> None:
        pass


class Backend(ABC):
    """One store's database engine; made by `for_url`, one per Store."""

    name: str
    backs_up = False  # whether `backup` copies the store (else its own tools must)
    # Seconds one bulk write transaction (an import's batch, a purge's) aims to last
    # (store/batching.py): what a stop may have to wait behind, or what it need not.
    bulk_seconds = 0.010
    # Names of the backend for SUPPORTED_STORES, e.g. "sqlite:///PATH".
    url_form: str

    def __init__(self, url: str) -> None:
        self.url = url
        self._parsed = make_url(url)

    @classmethod
    @abstractmethod
    def check(cls, url: Any, shown: str) -> None:
        """StoreError unless the parsed URL names a store of this backend that can be opened."""

    # -- naming ---------------------------------------------------------------

    @property
    @abstractmethod
    def where(self) -> str:
        """The store as messages name it: a file path, or the URL with its password masked."""

    @property
    def file(self) -> Path | None:
        """The store's local file, if it is one (None: a server)."""
        return None

    @property
    def intent_dir(self) -> str | None:
        """Where stop intents live beside the store (store/stop_intent.py), or None: none."""
        return None

    # -- connection set-up --------------------------------------------------

    def prepare(self, *, create: bool, read_only: bool) -> None:
        """Before the first connection: create what the store needs (a file), or refuse."""

    @abstractmethod
    def create_engine(self, *, busy_timeout_ms: int, read_only: bool) -> Engine: ...

    @abstractmethod
    @contextmanager
    def writing(self, conn: Connection, *, durable: bool, patience: float | bool) -> Iterator[None]:
        """Around `conn.begin()` of a write: its locking, durability and lock patience.

        patience: seconds to wait for a lock, True for the busy timeout, False for
        the backend's ordinary wait.
        """
        yield

    def write_began(self, conn: Connection, *, durable: bool, patience: float | bool) -> None:
        """First thing inside a write transaction (session settings that last only for it)."""

    # -- claims against stops ------------------------------------------------

    def claim_guard(self, conn: Connection) -> Sequence[int] | None:
        """First in a claim's transaction: the accounts it may claim from (None: any).

        After it returns, every stop of those accounts either committed before
        (and the claim's next statement sees it) or waits until this
        transaction has ended.
        """
        return None

    def exclude_claims(self, conn: Connection, account_id: int) -> None:
        """First in a stop's (pause's, delete's) transaction: order it against every claim."""

    @abstractmethod
    def pick(self, query: Select[Any]) -> ColumnElement[Any] | Select[Any]:
        """What a claim's UPDATE matches ids IN, from the SELECT that picks its rows."""

    # -- the gate's read and the acknowledgement ---------------------------------

    @abstractmethod
    def raw_reader(self, engine: Engine) -> Any:
        """A DB-API connection for the gate's read: never waits long for a writer."""

    @abstractmethod
    def raw_writer(self, engine: Engine) -> Any:
        """A DB-API connection for the acknowledgement."""

    @abstractmethod
    def begin_raw_write(self, raw: Any, patience: float) -> None:
        """Start a write on it, waiting at most `patience` seconds for the lock."""

    @abstractmethod
    def commit_raw_write(self, raw: Any, cursor: Any) -> None: ...

    # -- the dot fence ----------------------------------------------------------

    @abstractmethod
    def fence(self) -> Fence:
        """A new engine's hold on the fence (closed with the engine)."""

    @abstractmethod
    def wait_for_dots(self, store: Store, timeout: float) -> FenceResult:
        """After a stop's (pause's, delete's) commit, wait up to `timeout` for every
        dot allowed before it; see FenceResult."""

    # -- errors ---------------------------------------------------------------

    @abstractmethod
    def explain(self, exc: BaseException) -> StoreError:
        """A driver error as one line an operator can act on (StoreBusy for a lock wait)."""

    def is_driver_error(self, exc: BaseException) -> bool:
        """Whether `exc` came from the driver (and `explain` can name it)."""
        return False

    # -- wake-ups -----------------------------------------------------------------

    def listener(self) -> Any:
        """A new listener for the store's wake-ups (pg_notify.Listener: wait(timeout) -> hints),
        or None where there are none: the readers' polls are all there is."""
        return None

    @classmethod
    def wake(cls, conn: Connection, what: str, details: dict[str, object]) -> None:
        """Queue a wake-up (pg_notify.WHATS) in `conn`'s write transaction, sent when it
        commits; nothing where there are no wake-ups. ValueError if the details do not fit."""

    # -- access control -------------------------------------------------------------

    def roles_database(self) -> str:
        """The database the store's roles are granted on (store/roles.py); StoreError where the
        backend has no roles of its own."""
        raise StoreError(f"roles are for a PostgreSQL store (--db postgresql+psycopg://…); {self.access_is}")

    # What the store's access control is, where it has no roles (for the message above).
    access_is = "this store has no roles of its own"

    # -- what lives beside a local file -----------------------------------------

    def backup(self, store: Store, version: int) -> Path | None:
        """Copy the store before an upgrade changes it, where the backend can; the copy's path."""
        return None


def _backends() -> dict[str, type[Backend]]:
    from .postgresql import PostgreSQL
    from .sqlite import SQLite

    return {"sqlite": SQLite, "postgresql": PostgreSQL}


def supported_stores() -> str:
    """How to name a store to the operator, for every backend."""
    return "a SQLite file path or a sqlite:///PATH URL, or a postgresql+psycopg://USER@HOST/DB URL"


def path_url(path: Path) -> str:
    """The URL of a store given as a plain file path: the embedded default."""
    from .sqlite import SQLite

    return SQLite.url_of(path)


def of_connection(conn: Connection) -> type[Backend]:
    """The backend of a connection a store opened (for code handed only the connection)."""
    return _backends()[conn.dialect.name]


def for_url(url: str) -> Backend:
    """The backend of a store URL (already checked by connection.to_url)."""
    name = make_url(url).get_backend_name()
    try:
        cls = _backends()[name]
    except KeyError:
        raise StoreError(f"unsupported store URL; supported: {supported_stores()}") from None
    return cls(url)


def check_url(url: str) -> None:
    """StoreError if the URL does not name a store this release can open (no connection made)."""
    parsed = make_url(url)
    name = parsed.get_backend_name()
    cls = _backends().get(name)
    shown = parsed.render_as_string(hide_password=True)
    if cls is None:
        raise StoreError(f"unsupported store URL {shown}; supported: {supported_stores()}")
    cls.check(parsed, shown)


__all__ = ["Backend", "Fence", "FenceResult", "NoFence", "Unconfirmed", "check_url", "for_url", "of_connection", "supported_stores"]
