"""Schema migrations: a store made by the first release (schema 1) upgrades with nothing lost.

The fixture store-v1.db was built by that release's own code (fixtures/build_v1_store.py
says which commit and how). Every test upgrades a copy of it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from mailconsole.store import Store, StoreError, accounts, migrate, queue, schema
from mailconsole.store.errors import Refused
from mailconsole.store.status import overview
from storehelp import ALICE, assert_counters_match, sent

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1.db"
TABLES = ("meta", "accounts", "mailings", "revisions", "messages", "engines", "audit")
NEW_TABLES = ("suppressions", "relays")
HEAD = schema.SCHEMA_VERSION  # what every upgrade here ends at


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A copy of the first release's store, in its own directory (backups go beside it)."""
    path = tmp_path / "ops" / "store.db"
    path.parent.mkdir()
    shutil.copy(FIXTURE, path)
    return path


# Columns the first release did not have (schemas 2 to 4).
ADDED = ("fail_kind", "sender_name", "reply_to", "list_id", "suppressed",
         "relay", "relay_queue_id", "relay_state", "relay_at", "relay_note")


def dump(path: Path, *, without: tuple[str, ...] = ADDED) -> dict[str, list[dict]]:
    """Every row of every mailconsole table, in rowid order, leaving out the given columns."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {
            t: [{k: r[k] for k in r.keys() if k not in without} for r in conn.execute(f"SELECT * FROM {t} ORDER BY rowid")]
            for t in TABLES
        }
    finally:
        conn.close()


def fingerprint(path: Path) -> dict[str, tuple]:
    """A table-by-table description of an SQLite schema: columns in order, indexes, foreign keys."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for t in names:
            columns = conn.execute(f"PRAGMA table_xinfo({t})").fetchall()
            indexes = sorted(
                (name, unique, origin, partial, tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{name}')")))
                for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA index_list({t})")
            )
            fks = sorted(tuple(r[2:]) for r in conn.execute(f"PRAGMA foreign_key_list({t})"))
            out[t] = (tuple(columns), tuple(indexes), tuple(fks))
        return out
    finally:
        conn.close()


def metadata_diff(path: Path) -> list:
    """What Alembic's autogenerate would change to make the store match schema.py."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), schema.metadata)
    finally:
        engine.dispose()


def upgraded(path: Path) -> migrate.Result:
    store = migrate.open_store(str(path))
    try:
        return migrate.upgrade(store)
    finally:
        store.close()


def scalar(path: Path, sql: str):  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


# -- the fixture really is what the tests say ---------------------------------------


def test_the_fixture_is_a_first_release_store_with_something_in_every_state():
    rows = dump(FIXTURE)
    assert rows["meta"] == [{"key": "schema_version", "value": "1"}]
    assert "fail_kind" not in {c[1] for c in fingerprint(FIXTURE)["messages"][0]}
    assert "alembic_version" not in fingerprint(FIXTURE)
    assert {m["status"] for m in rows["mailings"]} == {"sent", "sending", "paused", "planned", "deleted"}
    assert {m["state"] for m in rows["messages"]} == {"sent", "queued", "claimed", "suspended", "failed"}
    assert max(r["number"] for r in rows["revisions"]) >= 2
    assert {a["action"] for a in rows["audit"]} >= {"create", "template", "pause", "delete", "stop", "resume"}
    assert len(rows["engines"]) == 1
    assert rows["accounts"][0]["stopped"] == 1 and rows["accounts"][0]["generation"] == 2


# -- refused before, upgraded with nothing lost ------------------------------------------


def test_an_old_store_is_refused_with_one_line_naming_the_store_and_the_command(v1):
    before = dump(v1)
    with pytest.raises(StoreError) as err:
        Store(str(v1))
    text = str(err.value)
    assert "\n" not in text
    assert f"`mailconsole migrate --db {v1}`" in text and "schema version 1" in text and f"({HEAD})" in text
    assert dump(v1) == before and "alembic_version" not in fingerprint(v1)


def test_upgrade_keeps_every_row_and_counter_and_adds_the_new_columns_empty(v1):
    before = dump(v1)
    result = upgraded(v1)
    assert (result.plan.current, result.plan.target, result.plan.revision) == (1, HEAD, None)
    after = dump(v1)
    assert {t: rows for t, rows in after.items() if t != "meta"} == {t: rows for t, rows in before.items() if t != "meta"}
    meta = {r["key"]: r["value"] for r in after["meta"]}
    assert meta.keys() == {"schema_version", "store_id"} and meta["schema_version"] == str(HEAD)
    assert len(meta["store_id"]) == 26 and meta["store_id"].isalnum() and meta["store_id"].islower()
    assert scalar(v1, "SELECT count(*) FROM messages") == len(before["messages"]) > 0
    assert scalar(v1, "SELECT count(*) FROM messages WHERE fail_kind IS NOT NULL") == 0
    assert scalar(v1, "SELECT count(*) FROM mailings WHERE sender_name IS NOT NULL OR reply_to IS NOT NULL "
                      "OR list_id IS NOT NULL OR suppressed != 0") == 0
    assert scalar(v1, "SELECT count(*) FROM accounts WHERE list_id IS NOT NULL") == 0
    assert scalar(v1, "SELECT count(*) FROM suppressions") == 0
    assert scalar(v1, "SELECT version_num FROM alembic_version") == migrate.head_revision() == schema.revision_of(HEAD)
    store = Store(str(v1))
    try:
        assert_counters_match(store)
    finally:
        store.close()


def test_the_upgraded_store_works_status_claims_stop_and_resume(v1):
    upgraded(v1)
    store = Store(str(v1))
    try:
        view = overview(store)
        assert view.account.stopped and view.account.reason == "checking \u00fcmlauts"
        assert queue.claim(store, "after-upgrade", 10, 60) == []  # still stopped, as before the upgrade
        accounts.resume(store, ALICE, max_age_days=100_000)  # nothing suspended: the queued can go
        claimed = queue.claim(store, "after-upgrade", 10, 60)
        assert claimed and {c.mailing_id for c in claimed} <= {2, 4}
        queue.record(store, "after-upgrade", sent(store, claimed))
        assert_counters_match(store)
        accounts.stop(store, ALICE, reason="after the upgrade")
        assert queue.claim(store, "after-upgrade", 10, 60) == []
        assert accounts.state(store).generation == 3
    finally:
        store.close()


def test_upgrading_twice_changes_nothing_the_second_time(v1):
    first = upgraded(v1)
    rows = dump(v1, without=())
    files = sorted(p.name for p in v1.parent.iterdir())
    second = upgraded(v1)
    assert first.plan.needed and not second.plan.needed
    assert second.backup is None and second.lock_held == 0.0
    assert dump(v1, without=()) == rows
    assert sorted(p.name for p in v1.parent.iterdir()) == files


def test_a_backup_of_the_version_1_store_is_kept_beside_it(v1):
    before = dump(v1)
    result = upgraded(v1)
    backup = result.backup
    assert backup is not None and backup.parent == v1.parent and backup.exists()
    assert backup.name.startswith("store.schema-1-backup-") and backup.suffix == ".db"
    assert backup.stat().st_mode & 0o777 == 0o600
    assert scalar(backup, "PRAGMA journal_mode") == "delete"  # one self-contained file
    assert dump(backup) == before and fingerprint(backup) == fingerprint(FIXTURE)
    with pytest.raises(StoreError, match="schema version 1, older"):
        Store(str(backup))  # the backup opens as what it is: a version 1 store


# -- refusals: nothing changed ----------------------------------------------------------


def _heartbeat_now(path: Path, pid: int = 31337) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO engines (id, host, pid, workers, transport, started_at, heartbeat_at, state, in_flight,"
            " sent_rate, failed_rate, sent_total, failed_total, acknowledged) "
            "VALUES ('live', 'mx2', ?, 4, 'null:', ?, ?, 'running', 0, 0, 0, 0, 0, '{}')",
            (pid, time.time(), time.time()),
        )
    conn.close()


def test_upgrade_is_refused_while_an_engine_heartbeats(v1):
    _heartbeat_now(v1)
    before = dump(v1, without=())
    store = migrate.open_store(str(v1))
    try:
        with pytest.raises(Refused) as err:
            migrate.upgrade(store)
    finally:
        store.close()
    text = str(err.value)
    assert "\n" not in text and "live engine live (pid 31337 on mx2" in text and "before migrating" in text
    assert dump(v1, without=()) == before and "alembic_version" not in fingerprint(v1)
    assert sorted(p.name for p in v1.parent.iterdir() if "backup" in p.name) == []


def test_a_stale_engine_row_does_not_block_the_upgrade(v1):
    # The fixture's engine heartbeat is years old: that engine is gone.
    assert upgraded(v1).plan.needed
    assert scalar(v1, "SELECT count(*) FROM engines") == 1


def test_a_newer_store_is_refused_by_the_upgrade_naming_both_versions(v1):
    upgraded(v1)
    conn = sqlite3.connect(v1)
    with conn:
        conn.execute(f"UPDATE meta SET value='{HEAD + 1}' WHERE key='schema_version'")
    conn.close()
    store = migrate.open_store(str(v1))
    newer, ours = schema.SCHEMA_VERSION + 1, schema.SCHEMA_VERSION
    try:
        with pytest.raises(StoreError, match=rf"schema version {HEAD + 1}, newer than this mailconsole understands \({HEAD}\)"):
            migrate.upgrade(store)
    finally:
        store.close()


def test_a_failing_revision_leaves_the_store_as_it_was(v1):
    """Stamp, revisions and schema_version commit together: a failure in one undoes all of them."""
    conn = sqlite3.connect(v1)
    with conn:  # a hand-made column in the way makes revision 0002's ALTER TABLE fail
        conn.execute("ALTER TABLE messages ADD COLUMN fail_kind TEXT")
    conn.close()
    before = dump(v1, without=())
    store = migrate.open_store(str(v1))
    try:
        with pytest.raises(StoreError) as err:
            migrate.upgrade(store)
    finally:
        store.close()
    assert "\n" not in str(err.value) and "duplicate column" in str(err.value) and "store is unchanged" in str(err.value)
    assert dump(v1, without=()) == before and "alembic_version" not in fingerprint(v1)


def test_a_current_store_without_alembic_bookkeeping_is_only_stamped(tmp_path):
    path = tmp_path / "store.db"
    Store(str(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE alembic_version")
    conn.close()
    result = upgraded(path)
    assert (result.plan.current, result.plan.revision, result.backup) == (HEAD, None, None)
    assert scalar(path, "SELECT version_num FROM alembic_version") == schema.revision_of(HEAD)
    assert not upgraded(path).plan.needed


# -- one schema, however the store was made ---------------------------------------------


def test_a_new_store_and_an_upgraded_one_have_the_same_schema(v1, tmp_path):
    upgraded(v1)
    new = tmp_path / "new.db"
    Store(str(new)).close()
    assert metadata_diff(v1) == [] and metadata_diff(new) == []
    assert fingerprint(v1) == fingerprint(new)
    # The same rows of meta; the store ids differ, as two stores' ids must.
    new_meta, old_meta = (dict((r["key"], r["value"]) for r in dump(p, without=())["meta"]) for p in (new, v1))
    assert new_meta.keys() == old_meta.keys() == {"schema_version", "store_id"}
    assert new_meta["schema_version"] == old_meta["schema_version"] == str(HEAD)
    assert new_meta["store_id"] != old_meta["store_id"] and len(new_meta["store_id"]) == len(old_meta["store_id"]) == 26
    assert scalar(new, "SELECT version_num FROM alembic_version") == migrate.head_revision()


def test_the_revisions_from_empty_build_the_first_release_schema_then_todays(tmp_path):
    """Revision 0001 is the schema as the first release created it; each revision moves meta with it."""
    path = tmp_path / "empty.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0001")
        assert fingerprint(path) == {**fingerprint(FIXTURE), "alembic_version": fingerprint(path)["alembic_version"]}
        assert scalar(path, "SELECT value FROM meta") == "1"
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "head")
        assert scalar(path, "SELECT value FROM meta WHERE key='schema_version'") == str(HEAD)
        new = tmp_path / "new.db"
        Store(str(new)).close()
        assert fingerprint(path) == fingerprint(new)
    finally:
        engine.dispose()


def test_the_head_revision_is_the_schema_version():
    assert migrate.head_revision() == schema.revision_of(schema.SCHEMA_VERSION)


def test_downgrade_to_revision_1_gives_back_the_first_release_schema(v1):
    upgraded(v1)
    store = migrate.open_store(str(v1))
    try:
        with store.write() as conn:
            command.downgrade(migrate.alembic_config(conn), "0001")
    finally:
        store.close()
    without_version = {t: v for t, v in fingerprint(v1).items() if t != "alembic_version"}
    assert without_version == fingerprint(FIXTURE)
    assert scalar(v1, "SELECT value FROM meta") == "1"


# -- the lock and the normal open path --------------------------------------------------


def test_the_upgrade_holds_the_write_lock_briefly_however_many_messages(v1):
    """ADD COLUMN changes only the table's definition: no copy of 300,000 messages. The steps
    that read them all are schema 4's index and schema 6's three rebuilt ones, two of which
    hold none of these (sent) messages: together about what building one full index costs."""
    conn = sqlite3.connect(v1)
    with conn:
        conn.executemany(
            "INSERT INTO messages (mailing_id, email, fields, state, due_at, attempts, recovered) "
            "VALUES (1, ?, '{}', 'sent', 0, 1, 0)",
            ((f"bulk{i}@example.org",) for i in range(300_000)),
        )
    conn.close()
    bulk = v1.with_name("bulk.db")
    shutil.copy(v1, bulk)
    for _ in range(3):  # timing on a shared machine: the first calm attempt decides
        alone = v1.with_name("alone.db")
        shutil.copy(bulk, alone)
        conn = sqlite3.connect(alone)
        started = time.monotonic()
        with conn:
            conn.execute("CREATE INDEX ix_alone ON messages (mailing_id, state, revision_id, id)")
        index_alone = time.monotonic() - started
        conn.close()
        alone.unlink()
        for leftover in (*v1.parent.glob("*backup*"), *v1.parent.glob("store.db-*")):
            leftover.unlink()
        shutil.copy(bulk, v1)  # as it was before the previous attempt's upgrade
        held = upgraded(v1).lock_held
        if held < 0.25 + 2 * index_alone:
            break
    assert held < 0.25 + 2 * index_alone, (
        f"held the write lock {held * 1000:.0f} ms (the index alone: {index_alone * 1000:.0f} ms)")


def test_opening_or_creating_a_store_does_not_import_alembic(tmp_path):
    code = (
        "import sys; from mailconsole.store import Store; from mailconsole.cli.main import main\n"
        f"Store({str(tmp_path / 'a.db')!r}).close(); Store({str(tmp_path / 'a.db')!r}).close()\n"
        f"assert main(['--db', {str(tmp_path / 'a.db')!r}, 'status']) == 0\n"
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


# -- schema 4: the recipients index ------------------------------------------------------


def test_a_version_3_store_upgrades_to_the_recipients_index_and_its_plan_uses_it(v1):
    """A store as revision 0003 left it (the last release's schema) gains ix_messages_recipients."""
    store = migrate.open_store(str(v1))
    try:
        with store.write() as conn:
            migrate.stamp(conn, "0001")  # the first release kept no Alembic bookkeeping
            command.upgrade(migrate.alembic_config(conn), "0003")
    finally:
        store.close()
    assert scalar(v1, "SELECT value FROM meta WHERE key='schema_version'") == "3"
    assert "ix_messages_recipients" not in str(fingerprint(v1)["messages"][1])
    with pytest.raises(StoreError, match="schema version 3, older than this mailconsole's"):
        Store(str(v1))
    before = dump(v1)
    result = upgraded(v1)
    assert (result.plan.current, result.plan.revision, result.plan.target) == (3, "0003", HEAD)
    assert dump(v1) == before | {"meta": dump(v1)["meta"]}
    assert scalar(v1, "SELECT value FROM meta WHERE key='schema_version'") == str(HEAD)
    indexes = {i[0]: i[4] for i in fingerprint(v1)["messages"][1]}
    assert indexes["ix_messages_recipients"] == ("mailing_id", "state", "revision_id", "id")
    conn = sqlite3.connect(v1)
    try:
        # With the partial index's own condition, as schema.state_is writes it (version 6).
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT id, email FROM messages WHERE mailing_id = 1 AND state = 'sent' "
                            "AND state != 'claimed' AND revision_id = 1 AND id > 0 ORDER BY id LIMIT 5000").fetchall()
    finally:
        conn.close()
    assert [r[-1] for r in plan] == [
        "SEARCH messages USING INDEX ix_messages_recipients (mailing_id=? AND state=? AND revision_id=? AND id>?)"]
    store = Store(str(v1))
    try:
        assert_counters_match(store)
    finally:
        store.close()
