"""Upgrading a store's schema in place, with Alembic (the revisions are in migrations/).

Every other command refuses a store whose schema is older than the program's
(Store._check_schema, which reads meta.schema_version and never imports Alembic);
this module is the only way in. An upgrade:

1. opens the store without the version check and reads where it is: the schema
   version in meta and the Alembic revision in alembic_version (a store made by
   the first release has none: it is recognised by its schema version);
2. refuses while an engine is live on it (a fresh heartbeat in the engines table);
3. where the store is a local file, copies it first (its backend's backup: a consistent copy,
   read under WAL without taking the write lock), beside the store;
4. in one write transaction: checks the engines again (now that no one else can
   write, no engine can start heartbeating until it commits), stamps the revision
   of the recorded version if the store has none, and runs every revision up to
   the head; each revision moves meta.schema_version with it.

Nothing is half-applied: the transaction commits all of it or none. Until it
commits, every command (and every engine of this release) still sees the old
version and refuses the store, so no engine can start while the migration runs.
That transaction holds the write lock for milliseconds (ADD COLUMN changes only
the table's definition; see the revisions for what would take longer), and the
only writers it can hold up meanwhile belong to the earlier release: this one
refuses the old store before writing anything. One gap remains for those: an
engine of the earlier release that read the old version just before the
transaction began waits for the lock and then runs on the new schema (schema 2
only adds a nullable column, which that release never reads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, select

from . import schema
from .connection import Store
from .engines import EngineInfo, live_engines
from .errors import Refused, StoreError

if TYPE_CHECKING:
    from alembic.config import Config


@dataclass(frozen=True)
class Plan:
    """Where a store is and where this program would take it."""

    where: str
    current: int  # meta.schema_version
    target: int  # schema.SCHEMA_VERSION
    revision: str | None  # the Alembic revision recorded; None: none (a first-release store)

    @property
    def needed(self) -> bool:
        return self.current != self.target or self.revision != schema.revision_of(self.target)


@dataclass(frozen=True)
class Result:
    plan: Plan
    backup: Path | None  # the copy taken before the upgrade (SQLite only)
    lock_held: float  # seconds the upgrade held the store's write lock


def open_store(db: str | None) -> Store:
    """Open an existing store of any schema version, for the migration only."""
    return Store(db, create=False, check_version=False)


def alembic_config(connection: Connection | None = None) -> "Config":
    """Alembic's configuration, built here: no alembic.ini, scripts inside the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("mailconsole.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations package holds no revision"
    return head


def plan(store: Store) -> Plan:
    """Read the store's schema version and Alembic revision; changes nothing."""
    current = store.schema_version()
    with store.read() as conn:
        revision = _recorded_revision(conn)
    return Plan(store.where, current, schema.SCHEMA_VERSION, revision)


def _recorded_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table(schema.alembic_version.name):
        return None
    return conn.execute(select(schema.alembic_version.c.version_num)).scalar()


def check_upgradable(p: Plan) -> None:
    """Refuse a store this program cannot take to its schema version."""
    if p.current > p.target:
        raise StoreError(
            f"store {p.where} has schema version {p.current}, newer than this mailconsole "
            f"understands ({p.target}); upgrade mailconsole"
        )
    if p.current < 1:
        raise StoreError(f"store {p.where} records no schema version; it is not a mailconsole store it can upgrade")


def refuse_if_engines_live(store: Store) -> None:
    live = live_engines(store)
    if live:
        raise Refused(
            f"store {store.where} has {_describe(live, store.now())}; stop "
            f"{'it' if len(live) == 1 else 'them'} before migrating (nothing changed)"
        )


def _describe(live: list[EngineInfo], now: float) -> str:
    first = live[0]
    one = f"engine {first.id} (pid {first.pid} on {first.host}, heartbeat {max(0.0, now - first.heartbeat_at):.0f} s ago)"
    if len(live) == 1:
        return f"a live {one}"
    return f"{len(live)} live engines: {one} and {len(live) - 1} more"


def upgrade(store: Store, *, backup: bool = True) -> Result:
    """Bring the store to this program's schema version (see the module docstring).

    Refused (Refused, StoreError) with nothing changed when an engine is live, the
    store is newer, or it records no version. On a current store it does nothing.
    """
    p = plan(store)
    check_upgradable(p)
    if not p.needed:
        return Result(p, None, 0.0)
    refuse_if_engines_live(store)
    copy = store.backend.backup(store, p.current) if backup and p.current != p.target else None
    head_revision()  # imports Alembic and compiles the scripts now, not while holding the lock
    try:
        held = _apply(store, p)
    except Refused:
        raise
    except StoreError as exc:
        raise StoreError(f"{exc}; the upgrade was rolled back, the store is unchanged") from None
    return Result(p, copy, held)


def _apply(store: Store, p: Plan) -> float:
    """Stamp if needed and run the revisions, in one write transaction; returns how long it held the lock."""
    from alembic import command  # late: ≈110 ms to import, needed by this command only

    started = time.monotonic()
    with store.write(durable=True) as conn:
        # Under the write lock no engine can write a heartbeat, so none can
        # become live between this check and the commit.
        refuse_if_engines_live(store)
        if _recorded_revision(conn) is None:
            stamp(conn, schema.revision_of(p.current))
        command.upgrade(alembic_config(conn), "head")
        version = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
        revision = _recorded_revision(conn)
        if version != str(p.target) or revision != schema.revision_of(p.target):
            # A revision that forgot set_schema_version: roll everything back.
            raise StoreError(
                f"store {store.where}: the migrations ended at schema version {version} "
                f"(revision {revision}), not {p.target}"
            )
    return time.monotonic() - started


def stamp(conn: Connection, revision: str) -> None:
    """Record `revision` as the store's Alembic revision, as `alembic stamp` does.

    For a store made before Alembic kept track (the first release's): the same
    table and row a new store gets (Store._create_schema), without running
    Alembic's environment a second time inside the write lock.
    """
    schema.alembic_version.create(conn, checkfirst=True)
    conn.execute(schema.alembic_version.delete())
    conn.execute(schema.alembic_version.insert().values(version_num=revision))


def backup_copy(store: Store, version: int) -> Path | None:
    """Copy the store beside itself before it is changed, where its backend can (a file)."""
    return store.backend.backup(store, version)


__all__ = ["Plan", "Result", "open_store", "alembic_config", "head_revision", "plan", "upgrade", "stamp", "backup_copy"]
