"""Fixtures of the PostgreSQL tests: stores on the session's throwaway server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mailconsole.store import Store, migrate
from mailconsole.store import connection as store_connection


@pytest.fixture(autouse=True)
def postgres_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # Makes `postgresql+psycopg://` URLs pass the store's URL check while that backend
    # is not registered there yet; once it is, this sets what is already set.
    monkeypatch.setitem(store_connection.SUPPORTED_BACKENDS, "postgresql", "postgresql+psycopg://HOST/DB")


@pytest.fixture
def migrated_url(pg_url: str) -> str:
    """A fresh database holding a store made by the Alembic migrations (schema head)."""
    from alembic import command

    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
    finally:
        engine.dispose()
    Store(pg_url).close()  # the default account, as every store has
    return pg_url


def login_url(url: str, user: str, password: str) -> str:
    """`url` with another user and its password (test logins only: never on shared hosts)."""
    return sa.engine.make_url(url).set(username=user, password=password).render_as_string(hide_password=False)
