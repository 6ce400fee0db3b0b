"""Which backend the suites' stores use: SQLite files, or PostgreSQL databases.

`MAILCONSOLE_TEST_BACKEND=postgresql` runs the suites on PostgreSQL: the `store`
fixtures (and the CLI's `db`) then name a fresh database on the session's test
server (tests/pg_server.py), and a test that asks for the store's SQLite file
(`db_path`) is skipped. Tests that name their stores by file (the console's
fixed stores, two consoles on one store) go through `store_at`: one database
per file name, the same for the same name within a test.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

ON_POSTGRESQL = os.environ.get("MAILCONSOLE_TEST_BACKEND") == "postgresql"


def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's store: a file in tmp_path, or a fresh PostgreSQL database (ON_POSTGRESQL)."""
    if ON_POSTGRESQL:
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "store.db")


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """For a test of something only an SQLite store has (a file, its lock, intents beside it)."""
    return pytest.mark.skipif(ON_POSTGRESQL, reason=reason)


class _Databases:
    """The databases `store_at` made for the running test: dropped when it ends (tests/conftest.py)."""

    server: Any = None  # the session's pg_server.PgServer, once ON_POSTGRESQL
    template: str | None = None  # a migrated store to copy (pg_store_template)
    made: dict[str, str] = {}

    @classmethod
    def drop_all(cls) -> None:
        for name in cls.made.values():
            cls.server.drop_database(name)
        cls.made.clear()


def store_at(path: Path | str) -> str:
    """The store a test names by its file `path`: that path (SQLite), or on PostgreSQL a
    database of its own, made from the migrated template on first use and the same
    database again for the same path until the test ends."""
    if not ON_POSTGRESQL:
        return str(path)
    if _Databases.server is None:
        raise RuntimeError("store_at on PostgreSQL needs the pg_databases fixture (tests/conftest.py)")
    key = str(Path(path).absolute())
    name = _Databases.made.get(key)
    if name is None:
        name = "f_" + hashlib.sha1(key.encode()).hexdigest()[:24]
        _Databases.server.create_database(name, template=_Databases.template)
        _Databases.made[key] = name
    return str(_Databases.server.url(name))


def execute(location: str, statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run one SQL statement on the store at `location` outside the store's API (to plant what an
    older release or a hand edit left behind), committed; the rows it returned."""
    import sqlalchemy as sa

    from mailconsole.store.connection import to_url

    engine = sa.create_engine(to_url(location))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params or {})
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()
