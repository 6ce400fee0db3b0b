"""A stand-in PostgreSQL backend for the tests, used only while the store registers none.

Plain READ COMMITTED transactions on the real server: no ordering of claims against
stops, no dot fence, no fail-closed deadline. Enough for what the tests built on it
check (privileges, wake-ups, an engine sending); the store's own backend replaces it
as soon as `backends` knows "postgresql", and then this is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Connection, Select
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import Engine

from mailconsole.store import backends
from mailconsole.store.backends import Backend, Fence, FenceResult, NoFence
from mailconsole.store.errors import StoreError


class StandInPostgreSQL(Backend):
    name = "postgresql"
    url_form = "postgresql+psycopg://HOST/DB"

    @classmethod
    def check(cls, url: Any, shown: str) -> None:
        if url.get_driver_name() != "psycopg":
            raise StoreError(f"unsupported store URL {shown}")

    @property
    def where(self) -> str:
        return self._parsed.render_as_string(hide_password=True)

    def create_engine(self, *, busy_timeout_ms: int, read_only: bool) -> Engine:
        return sa_create_engine(self.url, pool_pre_ping=True)

    @contextmanager
    def writing(self, conn: Connection, *, durable: bool, patience: float | bool) -> Iterator[None]:
        yield

    def pick(self, query: Select[Any]) -> Any:
        return query.scalar_subquery()

    def raw_reader(self, engine: Engine) -> Any:
        return engine.raw_connection()

    def begin_raw_read(self, cursor: Any) -> None:
        pass

    def raw_writer(self, engine: Engine) -> Any:
        return engine.raw_connection()

    def begin_raw_write(self, raw: Any, patience: float) -> None:
        pass

    def commit_raw_write(self, raw: Any, cursor: Any) -> None:
        raw.commit()

    def fence(self) -> Fence:
        return NoFence()

    def wait_for_dots(self, store: Any, timeout: float) -> FenceResult:
        return FenceResult(True)

    def is_driver_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)

    def explain(self, exc: BaseException) -> StoreError:
        text = str(getattr(exc, "orig", exc)) or type(exc).__name__
        return StoreError(f"store {self.where}: {text.splitlines()[0]}")

    def listener(self) -> Any:
        from mailconsole.store.backends import pg_notify

        return pg_notify.Listener(self.url)


def accept_postgres(mp: pytest.MonkeyPatch) -> None:
    """Let Store() open postgresql+psycopg:// URLs (with the stand-in) if the store cannot yet."""
    registered = backends._backends()
    if "postgresql" in registered:
        return
    mp.setattr(backends, "_backends", lambda: {**registered, "postgresql": StandInPostgreSQL})


__all__ = ["StandInPostgreSQL", "accept_postgres"]
