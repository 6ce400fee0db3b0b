"""Opening a store: refusals are one clear line, and a new store file is private."""

from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest
from lockholder import lock_held, release
from sqlalchemy import event
from storehelp import ALICE

from store_backend import sqlite_only
from mailconsole.store import Store, StoreError, accounts, mailings
from mailconsole.store.schema import SCHEMA_VERSION


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_new_store_file_is_private(tmp_path):
    path = tmp_path / "sub" / "new.db"  # missing directories are created
    Store(str(path)).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):  # SQLite gives its side files the database's mode
        side = path.with_name(path.name + extra)
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0


@sqlite_only("the SQLite file's journal mode (PRAGMA journal_mode)")
def test_new_store_has_the_default_account_and_wal(store):
    assert accounts.state(store).name == "default"
    with store.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1


def test_reopening_keeps_the_data(store, db_path, make_mailing):
    mid = make_mailing(3)
    again = Store(str(db_path))
    assert mailings.get_mailing(again, mid).recipients == 3
    again.close()


def test_accepts_an_sqlalchemy_url(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'url.db'}")
    assert accounts.state(s).generation == 0
    s.close()


def test_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory, not a store") as info:
        Store(str(tmp_path))
    one_line(info)


def test_missing_store_without_create(tmp_path):
    with pytest.raises(StoreError, match="no store at .*; create one with `mailconsole init`"):
        Store(str(tmp_path / "absent.db"), create=False)
    assert not (tmp_path / "absent.db").exists()


def test_corrupt_file_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError, match="is not a mailconsole store \\(corrupt or another kind of file\\)") as info:
        Store(str(path))
    one_line(info)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_damaged_database_is_refused(store, db_path, make_mailing):
    make_mailing(50)
    store.close()
    data = bytearray(db_path.read_bytes())
    data[0:16] = b"garbage garbage!"  # the SQLite header
    db_path.write_bytes(bytes(data))
    for side in ("-wal", "-shm"):
        db_path.with_name(db_path.name + side).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="not a mailconsole store"):
        Store(str(db_path))


def test_another_programs_database_is_left_alone(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(StoreError, match="is another program's database"):
        Store(str(path))
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["invoices"]


def test_newer_schema_version_is_refused(store, db_path):
    store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as info:
        Store(str(db_path))
    text = one_line(info)
    assert f"schema version {SCHEMA_VERSION + 1}" in text and f"({SCHEMA_VERSION})" in text
    assert "upgrade mailconsole" in text


def test_read_only_store_reads_but_refuses_writes(store, db_path, make_mailing):
    mid = make_mailing(2)
    ro = Store(str(db_path), read_only=True)
    try:
        assert mailings.get_mailing(ro, mid).queued == 2
        with pytest.raises(StoreError, match="read-only") as info:
            accounts.stop(ro, ALICE)
        one_line(info)
    finally:
        ro.close()
    assert not accounts.state(store).stopped


def test_read_only_open_of_a_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(str(tmp_path / "absent.db"), read_only=True)
    assert not (tmp_path / "absent.db").exists()


@sqlite_only("a read-only SQLite file (PRAGMA query_only)")
def test_driver_read_only_errors_become_one_clear_line(store, make_mailing):
    """What SQLite says for a read-only file, produced the way root also sees it (query_only)."""
    make_mailing(1)
    event.listen(store.engine, "connect", lambda dbapi_conn, _rec: dbapi_conn.execute("PRAGMA query_only=ON"))
    store.engine.dispose()  # new connections pick up the listener
    with pytest.raises(StoreError, match=r"is read-only; check the file's permissions") as info:
        accounts.stop(store, ALICE)
    one_line(info)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions; a 0444 file only stops other users")
def test_read_only_file_is_refused_clearly(store, db_path):
    store.close()
    for p in db_path.parent.glob(db_path.name + "*"):
        p.chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        s = Store(str(db_path))
        accounts.stop(s, ALICE)


def test_locked_store_waits_then_fails_clearly(store, db_path):
    with lock_held(db_path) as holder:
        impatient = Store(str(db_path), busy_timeout_ms=200)
        # Reads still work under WAL while another process writes.
        assert not accounts.state(impatient).stopped
        start = time.monotonic()
        # One try (the console's commit_stop; `stop` itself retries until applied).
        with pytest.raises(StoreError, match="locked by another writer") as info:
            accounts.commit_stop(impatient, ALICE)
        waited = time.monotonic() - start
        one_line(info)
        assert 0.15 <= waited < 3.0  # it waited for the busy timeout, then gave up
        impatient.close()
        release(holder)
    # Once the other writer is gone, the stop goes through.
    assert accounts.stop(store, ALICE).stopped


def test_errors_name_the_store(tmp_path):
    path = tmp_path / "x.db"
    path.write_bytes(b"\x00" * 10 + b"junk" * 300)
    with pytest.raises(StoreError, match=str(path)):
        Store(str(path))
