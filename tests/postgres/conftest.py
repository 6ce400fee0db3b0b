"""Fixtures of the PostgreSQL tests: stores on the session's throwaway server (tests/conftest.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.fixture
def migrated_url(pg_store_url: str) -> str:
    return pg_store_url


def login_url(url: str, user: str, password: str) -> str:
    """`url` with another user and its password (test logins only: never on shared hosts)."""
    return sa.engine.make_url(url).set(username=user, password=password).render_as_string(hide_password=False)
