"""Which backend the suites' stores use: SQLite files, or PostgreSQL databases.

`MAILCONSOLE_TEST_BACKEND=postgresql` runs the suites on PostgreSQL: the `store`
fixtures (and the CLI's `db`) then name a fresh database on the session's test
server (tests/pg_server.py), and a test that asks for the store's SQLite file
(`db_path`) is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

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
