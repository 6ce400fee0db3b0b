"""Shared fixtures: a real SQLite store in a temporary directory with a clock the test drives,
and a throwaway PostgreSQL server (tests/pg_server.py) for the tests of that backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from csvfiles import write_csv
from store_backend import ON_POSTGRESQL, _Databases, store_location
from mailconsole.store import Store

# A fixed, round "now" so due times and the 7-day rule are exact in tests.
T0 = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRESQL:
        return
    needs_file = pytest.mark.skip(reason="works on the store's SQLite file (MAILCONSOLE_TEST_BACKEND=postgresql)")
    for item in items:
        if "db_path" in getattr(item, "fixturenames", ()):
            item.add_marker(needs_file)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock):
    s = Store(store_location(request, tmp_path), clock=clock)
    yield s
    s.close()


@pytest.fixture
def csv_file(tmp_path: Path):
    """write_csv bound to a fresh file name in tmp_path."""
    counter = iter(range(1_000_000))

    def make(rows, header=None, name: str | None = None) -> Path:
        return write_csv(tmp_path / (name or f"recipients-{next(counter)}.csv"), rows, header)

    return make


def _pg_server_running():  # type: ignore[no-untyped-def]
    """A started PgServer with its password in the environment; stopped (and removed) after."""
    from pg_server import PgServer, find_bindir

    if find_bindir() is None and os.geteuid() != 0:
        pytest.skip("no PostgreSQL binaries (initdb, postgres): install Debian's postgresql package")
    server = PgServer().start()
    env = pytest.MonkeyPatch()
    try:
        for name, value in server.env().items():
            env.setenv(name, value)
        yield server
    finally:
        env.undo()
        server.stop()


@pytest.fixture(scope="session")
def pg_server():
    """A private PostgreSQL server for the session (a `pg_server.PgServer`), stopped at the end.

    Its password is in the environment (PGPASSWORD, and PGPASSFILE names a .pgpass), so its
    URLs carry none. Skips only where there is no PostgreSQL and no root to install it.
    Tests must not stop or restart it: those use pg_restartable.
    """
    yield from _pg_server_running()


@pytest.fixture(scope="module")
def pg_restartable():
    """A server of the test module's own, which its tests may stop, restart or kill."""
    yield from _pg_server_running()


@pytest.fixture
def pg_url(pg_server) -> str:
    """URL of a fresh, empty database on the session's server, dropped after the test."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(scope="session")
def pg_store_template(pg_server) -> str:
    """Name of a database on the session's server holding a store made by the Alembic
    migrations (schema head, the default account): copying it beats migrating each time."""
    import sqlalchemy as sa
    from alembic import command

    from mailconsole.store import migrate

    name = "store_migrated_template"
    url = pg_server.create_database(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
    finally:
        engine.dispose()
    Store(url).close()  # the default account, as every store has
    return name


@pytest.fixture
def pg_store_url(pg_server, pg_store_template: str) -> str:
    """URL of a fresh copy of the migrated store (pg_store_template), dropped after the test."""
    url = pg_server.create_database(template=pg_store_template)
    yield url
    pg_server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture(autouse=True)
def pg_databases(request: pytest.FixtureRequest):
    """On PostgreSQL, where `store_backend.store_at` makes the test's databases; dropped after it."""
    if not ON_POSTGRESQL:
        yield
        return
    _Databases.server = request.getfixturevalue("pg_server")
    _Databases.template = request.getfixturevalue("pg_store_template")
    yield
    _Databases.drop_all()
