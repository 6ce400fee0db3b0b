"""On PostgreSQL, the same Alembic revisions create and upgrade a store as on SQLite."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from mailconsole.store import Actor, Store, accounts, migrate, queue, schema

OPERATOR = Actor("operator")


def _shape(url: str) -> dict:
    """Tables, their columns in order with types, indexes (with their conditions) and foreign keys."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            out = {}
            for t in sorted(insp.get_table_names()):
                cols = tuple((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t))
                idx = tuple(sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]),
                                    str(i.get("dialect_options", {}).get("postgresql_where")))
                                   for i in insp.get_indexes(t)))
                fks = tuple(sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                   for f in insp.get_foreign_keys(t)))
                out[t] = (cols, idx, fks)
            return out
    finally:
        engine.dispose()


def test_revisions_from_empty_upgrade_a_first_release_store_to_todays_schema(pg_server) -> None:
    old = pg_server.create_database()
    new = pg_server.create_database()
    try:
        engine = create_engine(old)
        try:
            with engine.begin() as conn:
                command.upgrade(migrate.alembic_config(conn), "0001")
        finally:
            engine.dispose()
        store = migrate.open_store(old)
        try:
            assert migrate.plan(store).current == 1
            result = migrate.upgrade(store)
            assert result.backup is None  # a server's backups are its own tools' job
        finally:
            store.close()
        Store(new).close()
        assert _shape(old) == _shape(new)
        engine = create_engine(old)
        try:
            with engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        finally:
            engine.dispose()
        store = Store(old)
        try:
            accounts.stop(store, OPERATOR)
            assert queue.claim(store, "engine", 10, 60) == []
            accounts.resume(store, OPERATOR)
        finally:
            store.close()
        # And back down again: every revision's downgrade runs on this backend too.
        store = migrate.open_store(old)
        try:
            with store.write() as conn:
                command.downgrade(migrate.alembic_config(conn), "0001")
            assert migrate.plan(store).current == 1
        finally:
            store.close()
    finally:
        for url in (old, new):
            pg_server.drop_database(url.rsplit("/", 1)[1])


@pytest.mark.parametrize("kind", ["wrong password", "unreachable", "no database", "wrong driver"])
def test_a_bad_postgresql_store_fails_in_one_line_without_the_password(pg_server, kind, monkeypatch) -> None:
    from mailconsole.store import StoreError

    base = pg_server.url()
    secret = "s3cr3t-Pw"
    host = f"{pg_server.host}:{pg_server.port}"
    url = {
        "wrong password": base.replace(f"@{host}", f":{secret}@{host}"),
        "unreachable": f"postgresql+psycopg://mailconsole:{secret}@127.0.0.1:1/mail?connect_timeout=2",
        "no database": base.rsplit("/", 1)[0] + "/nosuchdb",
        "wrong driver": f"postgresql+asyncpg://mailconsole:{secret}@{host}/mail",
    }[kind]
    if kind == "wrong password":
        monkeypatch.delenv("PGPASSWORD", raising=False)
        monkeypatch.delenv("PGPASSFILE", raising=False)
    with pytest.raises(StoreError) as err:
        Store(url).close()
    text = str(err.value)
    assert "\n" not in text and secret not in text, text
    expected = {"wrong password": "wrong or missing password", "unreachable": "unreachable",
                "no database": "does not exist", "wrong driver": "unsupported store URL"}[kind]
    assert expected in text, text
