"""`mailconsole db roles` on a real server: what the engine, operator and viewer roles may do."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import trio

from mailconsole.cli import main
from mailconsole.engine import Engine, EngineConfig
from mailconsole.store import Actor, Store, StoreError, accounts, engines, mailings, queue, relays, roles, schema
from mailconsole.store.gate_io import AckWriter, ControlReader
from mailconsole.store.importer import create_mailing
from mailconsole.store.queue import Outcome

from .conftest import login_url

PREFIX = "mc"
PASSWORD = "test-login-pw"
OPERATOR = Actor("operator", "192.0.2.1")


@pytest.fixture
def logins(migrated_url: str, pg_server) -> dict[str, str]:
    """The roles applied to a migrated store, and one login in each: kind -> store URL."""
    names = roles.apply(migrated_url, PREFIX)
    urls = {}
    with pg_server.connect() as conn:
        for kind, group in zip(roles.ROLE_KINDS, names.all()):
            user = f"{group}_login"
            conn.execute(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') "
                f"THEN CREATE ROLE {user} LOGIN PASSWORD '{PASSWORD}' IN ROLE {group}; END IF; END $$"
            )
            urls[kind] = login_url(migrated_url, user, PASSWORD)
    return urls


def add_mailing(store: Store, tmp_path: Path, n: int = 6, at: float | None = None) -> int:
    path = tmp_path / f"recipients-{time.monotonic_ns()}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["email", "name"])
        w.writerows([f"user{i}@example.net", f"User {i}"] for i in range(n))
    return create_mailing(store, OPERATOR, name="Autumn sale", sender="news@shop.example",
                          subject="Hello {{ name }}", text_body="Dear {{ name }}\n", html_body=None,
                          recipients=path, at=at).mailing_id


def refused(url: str, statement: str) -> str:
    """Run one statement as the URL's user; it must be refused for lack of privilege."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    except sa.exc.DBAPIError as exc:
        assert isinstance(exc.orig, psycopg.errors.InsufficientPrivilege), exc
        return str(exc.orig)
    finally:
        engine.dispose()
    raise AssertionError(f"allowed: {statement}")


def test_every_table_has_a_decision_for_the_engine() -> None:
    assert set(roles.ENGINE_GRANTS) == {t.name for t in schema.metadata.sorted_tables}


def test_engine_claims_records_and_heartbeats(logins: dict[str, str], migrated_url: str, tmp_path: Path) -> None:
    now = time.time()
    owner = Store(migrated_url)
    mid = add_mailing(owner, tmp_path, at=now + 60)  # planned: the engine starts it
    assert mailings.get_mailing(owner, mid).status == mailings.PLANNED
    engine = Store(logins["engine"], create=False, clock=lambda: now + 120)
    try:
        assert queue.promote_due(engine) == 1
        claimed = queue.claim(engine, "eng-1", 4, 60.0)
        assert len(claimed) == 4
        (rid, *_), = queue.newest_revisions(engine, [mid]).values()
        sent, failed, retry, release = claimed
        queue.record(engine, "eng-1", [
            Outcome(sent.id, mid, "sent", revision_id=rid, relay_reply="250 2.0.0 Ok: queued as 6B2C2166088"),
            Outcome(failed.id, mid, "failed", error="550 no such user", fail_kind="smtp"),
            Outcome(retry.id, mid, "retry", error="451 later", retry_at=now + 130, possibly_delivered=True),
            Outcome(release.id, mid, "release"),
        ], relay="relay.example:25")
        assert queue.renew_leases(engine, "eng-1", 60.0) == 0
        engines.beat(engine, "eng-1", host="host1", pid=1, workers=2, transport="null:", started_at=now,
                     state="running", acknowledged={1: 0})
        writer = AckWriter(engine)
        writer.write("eng-1", {1: 0}, 0)
        writer.close()
        reader = ControlReader(engine)
        assert reader.read().may_send(mid)
        reader.close()
        more = queue.claim(engine, "eng-2", 10, 60.0)
        assert queue.release_all(engine, "eng-2") == len(more)
        assert mailings.purge_deleted(engine) == 0
        # A relay agent runs as the engine role too: holds, the 7-day rule, its heartbeat.
        relays.beat(engine, "agent-1", acknowledged={}, counts={"held": 1}, host="relay1", pid=2, kind="postfix",
                    relay="relay.example:25", started_at=now, state="running")
        assert relays.apply(engine, [relays.Change(sent.id, relays.HELD)]) == 1
        assert relays.expire(engine, [sent.id], "held longer than 7 days") == 1
    finally:
        engine.close()
    m = mailings.get_mailing(owner, mid)
    assert (m.status, m.sent, m.failed, m.in_flight, m.queued, m.recovered, m.suspended) == (
        mailings.SENDING, 0, 1, 0, 4, 1, 1)
    assert [e.id for e in engines.list_engines(owner, include_gone=True)] == ["eng-1"]
    assert [r.id for r in relays.list_relays(owner, include_gone=True)] == ["agent-1"]
    owner.close()


async def test_the_real_engine_sends_a_mailing_as_the_engine_role(logins: dict[str, str], migrated_url: str,
                                                                  tmp_path: Path) -> None:
    owner = Store(migrated_url)
    mid = add_mailing(owner, tmp_path, n=20)
    store = Store(logins["engine"], create=False)
    engine = Engine(store, EngineConfig(transport="null:", idle_claim_interval=0.02, heartbeat_interval=0.2,
                                        maintenance_interval=0.2, shutdown_grace=2.0))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            with trio.fail_after(60):
                while (await trio.to_thread.run_sync(mailings.get_mailing, owner, mid)).status != mailings.SENT:
                    await trio.sleep(0.05)
            engine.request_stop()
    finally:
        store.close()
    assert mailings.get_mailing(owner, mid).sent == 20
    owner.close()


def test_engine_cannot_resume_nor_change_the_stop_state(logins: dict[str, str], migrated_url: str) -> None:
    owner = Store(migrated_url)
    accounts.stop(owner, OPERATOR, "default", "wrong list")
    engine = Store(logins["engine"], create=False)
    try:
        with pytest.raises(StoreError, match="permission denied"):
            accounts.resume(engine, OPERATOR, "default")
    finally:
        engine.close()
    assert accounts.state(owner, "default").stopped
    owner.close()
    refused(logins["engine"], "UPDATE accounts SET stopped = false")
    refused(logins["engine"], "UPDATE accounts SET generation = 0")
    refused(logins["engine"], "INSERT INTO accounts (name, stopped, generation) VALUES ('other', false, 0)")
    refused(logins["engine"], "DELETE FROM accounts")


def test_engine_cannot_edit_templates_mailings_or_suppressions(logins: dict[str, str], migrated_url: str,
                                                              tmp_path: Path) -> None:
    owner = Store(migrated_url)
    mid = add_mailing(owner, tmp_path)
    mailings.pause(owner, OPERATOR, mid)
    owner.close()
    url = logins["engine"]
    refused(url, "UPDATE revisions SET subject = 'Changed', text_body = 'changed'")
    refused(url, "INSERT INTO revisions (mailing_id, number, subject, text_body, created_at, created_by, sent) "
                 f"VALUES ({mid}, 9, 's', 't', 0, 'x', 0)")
    refused(url, "UPDATE mailings SET name = 'x'")
    refused(url, "UPDATE mailings SET sender = 'evil@example.org'")
    refused(url, "UPDATE mailings SET scheduled_at = 0")
    refused(url, "DELETE FROM mailings")
    refused(url, "UPDATE messages SET email = 'evil@example.org'")
    refused(url, "UPDATE messages SET fields = '{}'")
    refused(url, "INSERT INTO messages (mailing_id, email, fields, state, due_at, attempts, recovered) "
                 f"VALUES ({mid}, 'new@example.org', '{{}}', 'queued', 0, 0, 0)")
    refused(url, "DELETE FROM suppressions")
    refused(url, "INSERT INTO suppressions (account_id, email, created_at, created_by) VALUES (1, 'a@b.c', 0, 'x')")
    refused(url, "SELECT * FROM audit")
    refused(url, "INSERT INTO audit (at, actor, account, action, details) VALUES (0, 'x', 'default', 'resume', '{}')")
    # The status column it needs for finishing mailings does not undo a pause or a delete.
    message = refused(url, f"UPDATE mailings SET status = 'sending' WHERE id = {mid}")
    assert "may not move mailing" in message
    refused(url, f"UPDATE mailings SET status = 'planned' WHERE id = {mid}")


def test_engine_status_moves_are_only_the_engines(logins: dict[str, str], migrated_url: str, pg_server,
                                                 tmp_path: Path) -> None:
    owner = Store(migrated_url)
    mid = add_mailing(owner, tmp_path)
    owner.close()
    dbname = migrated_url.rsplit("/", 1)[1]
    with pg_server.connect(dbname) as conn:
        conn.execute("UPDATE mailings SET status = 'deleted' WHERE id = %s", [mid])
    refused(logins["engine"], f"UPDATE mailings SET status = 'sending' WHERE id = {mid}")
    # An operator moves it as it likes (has UPDATE on every column).
    engine = sa.create_engine(logins["operator"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE mailings SET status = 'paused' WHERE id = :id"), {"id": mid})
    finally:
        engine.dispose()


def test_viewer_reads_but_cannot_change_anything(logins: dict[str, str], migrated_url: str,
                                                tmp_path: Path) -> None:
    owner = Store(migrated_url)
    mid = add_mailing(owner, tmp_path)
    owner.close()
    viewer = Store(logins["viewer"], read_only=True)
    try:
        assert [m.id for m in mailings.list_mailings(viewer)] == [mid]
        assert queue.control(viewer, [mid]).may_send(mid)
    finally:
        viewer.close()
    writable = Store(logins["viewer"], create=False)  # opening a store writes nothing
    try:
        with pytest.raises(StoreError, match="permission denied"):
            accounts.stop(writable, OPERATOR, "default", "from a viewer")
        with pytest.raises(StoreError, match="permission denied"):
            mailings.pause(writable, OPERATOR, mid)
    finally:
        writable.close()
    url = logins["viewer"]
    for table in [*schema.metadata.sorted_tables, schema.alembic_version]:
        column = next(iter(table.columns)).name
        refused(url, f"UPDATE {table.name} SET {column} = {column}")
        refused(url, f"DELETE FROM {table.name}")
        refused(url, f"INSERT INTO {table.name} DEFAULT VALUES")
        refused(url, f"TRUNCATE {table.name}")
    refused(url, "CREATE TABLE intruder (x int)")


def test_operator_does_everything(logins: dict[str, str], tmp_path: Path) -> None:
    store = Store(logins["operator"], create=False)
    try:
        mid = add_mailing(store, tmp_path)
        mailings.pause(store, OPERATOR, mid)
        mailings.unpause(store, OPERATOR, mid)
        accounts.stop(store, OPERATOR, "default", "test")
        accounts.resume(store, OPERATOR, "default")
        mailings.delete_mailing(store, OPERATOR, mid)
        assert not accounts.state(store, "default").stopped
    finally:
        store.close()


def test_applying_twice_keeps_exactly_the_same_grants(logins: dict[str, str], migrated_url: str, pg_server) -> None:
    dbname = migrated_url.rsplit("/", 1)[1]

    def grants() -> list[tuple]:
        with pg_server.connect(dbname) as conn:
            return conn.execute(
                "SELECT grantee, table_name, column_name, privilege_type FROM information_schema.column_privileges "
                "WHERE grantee LIKE %s ORDER BY 1, 2, 3, 4", [f"{PREFIX}\\_%"]
            ).fetchall()

    before = grants()
    with pg_server.connect(dbname) as conn:  # something an earlier version might have granted
        conn.execute(f"GRANT UPDATE ON accounts TO {PREFIX}_engine")
    roles.apply(migrated_url, PREFIX)
    assert grants() == before
    assert ("mc_engine", "accounts", "stopped", "UPDATE") not in before
    assert ("mc_engine", "messages", "state", "UPDATE") in before


def test_cli_prints_the_sql_and_applies_it(migrated_url: str, pg_server, capsys) -> None:
    assert main(["--db", migrated_url, "db", "roles", "--prefix", "cli"]) == 0
    printed = capsys.readouterr().out
    dbname = migrated_url.rsplit("/", 1)[1]
    assert printed.startswith("-- mailconsole roles")
    assert f'GRANT CONNECT ON DATABASE "{dbname}" TO cli_viewer;' in printed
    with pg_server.connect(dbname) as conn:  # printing changed nothing
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'cli\\_%'").fetchone() == (0,)
        conn.execute(printed)  # what it prints is what --apply runs: valid as it stands
    assert main(["--db", migrated_url, "db", "roles", "--apply", "--prefix", "cli2"]) == 0
    assert "roles cli2_engine, cli2_operator, cli2_viewer set" in capsys.readouterr().out
    with pg_server.connect(dbname) as conn:
        assert conn.execute("SELECT has_column_privilege('cli2_engine', 'accounts', 'stopped', 'UPDATE'), "
                            "has_column_privilege('cli2_engine', 'messages', 'state', 'UPDATE'), "
                            "has_table_privilege('cli2_viewer', 'messages', 'SELECT')").fetchone() == (False, True, True)


def test_cli_refusals_are_one_line(logins: dict[str, str], migrated_url: str, pg_server, tmp_path: Path, capsys) -> None:
    assert main(["--db", migrated_url, "db", "roles", "--prefix", "Bad-Name"]) == 1
    err = capsys.readouterr().err
    assert "role prefix 'Bad-Name' is not a plain name" in err and err.count("\n") == 1
    assert main(["--db", str(tmp_path / "store.db"), "db", "roles"]) == 1
    assert "roles are for a PostgreSQL store" in capsys.readouterr().err
    # A viewer may not grant anything: refused, and nothing half-applied.
    assert main(["--db", logins["viewer"], "db", "roles", "--apply", "--prefix", "byviewer"]) == 1
    err = capsys.readouterr().err
    assert "roles not applied (nothing changed)" in err and err.count("\n") == 1
    assert PASSWORD not in err
    with pg_server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'byviewer%'").fetchone() == (0,)


def test_apply_refuses_a_database_without_a_current_store(pg_url: str, migrated_url: str, pg_server) -> None:
    with pytest.raises(StoreError, match="holds no mailconsole store; create one with `mailconsole init`"):
        roles.apply(pg_url, "refused")
    with pg_server.connect(migrated_url.rsplit("/", 1)[1]) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    expected = f"schema version 1, this mailconsole's is {schema.SCHEMA_VERSION}: run `mailconsole migrate`"
    with pytest.raises(StoreError, match=expected):
        roles.apply(migrated_url, "refused")
    with pg_server.connect() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'refused%'").fetchone() == (0,)
