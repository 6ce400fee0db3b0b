"""Fixtures of the PostgreSQL tests: stores on the session's throwaway server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailconsole.store import Store, migrate
from mailconsole.store import connection as store_connection


def _accept_postgres(mp: pytest.MonkeyPatch) -> None:
    # Makes `postgresql+psycopg://` URLs pass the store's URL check while that backend
    # is not registered there yet; once it is, this changes nothing.
    backends = getattr(store_connection, "SUPPORTED_BACKENDS", None)
    if backends is not None and "postgresql" not in backends:
        mp.setitem(backends, "postgresql", "postgresql+psycopg://HOST/DB")


@pytest.fixture(autouse=True)
def postgres_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _accept_postgres(monkeypatch)


@pytest.fixture(scope="session")
def migrated_template(pg_server) -> str:
    """Name of a database holding a store made by the Alembic migrations (schema head),
    to copy from: copying is much faster than migrating each time."""
    from alembic import command

    name = "store_migrated_template"
    url = pg_server.create_database(name)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
    finally:
        engine.dispose()
    with pytest.MonkeyPatch.context() as mp:  # this fixture outlives postgres_accepted's
        _accept_postgres(mp)
        Store(url).close()  # the default account, as every store has
    return name


@pytest.fixture
def migrated_url(pg_server, migrated_template: str) -> str:
    """URL of a fresh copy of the migrated store, dropped after the test."""
    url = pg_server.create_database(template=migrated_template)
    yield url
    pg_server.drop_database(url.rsplit("/", 1)[1])


def login_url(url: str, user: str, password: str) -> str:
    """`url` with another user and its password (test logins only: never on shared hosts)."""
    return sa.engine.make_url(url).set(username=user, password=password).render_as_string(hide_password=False)
