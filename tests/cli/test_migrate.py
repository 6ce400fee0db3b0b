"""`mailconsole migrate`, and every other command on a store older than the program."""

from __future__ import annotations

import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from store_backend import ON_POSTGRESQL
from mailconsole.store.schema import SCHEMA_VERSION as HEAD

FIXTURE = Path(__file__).parents[1] / "store" / "fixtures" / "store-v1.db"
PREVIOUS_RELEASE = "f0f9e9f"  # the commit that built the fixture (schema version 1)


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def v1(db: str) -> Path:
    """The `db` of the cli fixtures, holding a copy of the first release's store."""
    if ON_POSTGRESQL:
        pytest.skip("the first release's store is an SQLite file (PostgreSQL's upgrades: tests/store/test_pg_migrations.py)")
    shutil.copy(FIXTURE, db)
    return Path(db)


def version(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    finally:
        conn.close()


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.stem}.schema-*-backup-*"))


COMMANDS = [
    ("status",), ("status", "--json"), ("stop",), ("resume", "--yes"), ("mailings", "--planned"), ("audit",),
    ("pause", "2"), ("delete", "3", "--yes"), ("template", "show", "2"), ("requeue", "2"), ("init",),
    ("console",), (),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "(console)")
def test_every_other_command_on_an_old_store_says_to_migrate(cli, v1, args):
    r = cli(*args)
    line = one_line(r.err)
    assert r.code == 1 and "Traceback" not in r.err
    assert f"schema version 1, older than this mailconsole's ({HEAD}); upgrade it with `mailconsole migrate --db {v1}`" in line
    assert version(v1) == "1"


def test_status_in_a_real_process_says_to_migrate(cli_process, v1):
    r = cli_process("status")
    assert r.code == 1 and "Traceback" not in r.err
    assert "`mailconsole migrate --db" in one_line(r.err) and str(v1) in r.err


def test_serve_cannot_start_on_an_old_store(v1):
    """An engine opens the store first: on an old one it is refused, so none starts before the upgrade commits."""
    proc = subprocess.run(
        [sys.executable, "-m", "mailconsole", "--db", str(v1), "serve", "--transport", "null:"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "`mailconsole migrate --db" in one_line(proc.stderr)
    conn = sqlite3.connect(v1)
    assert conn.execute("SELECT count(*) FROM engines WHERE id NOT LIKE 'mx1:%'").fetchone()[0] == 0
    conn.close()


def test_no_engine_can_start_while_the_upgrade_runs(cli, v1, monkeypatch):
    """A real `serve` started inside the upgrade's transaction sees the old version and is refused."""
    from mailconsole.store import migrate

    seen: list[subprocess.CompletedProcess] = []
    stamp = migrate.stamp

    def stamp_then_start_an_engine(conn, revision):  # type: ignore[no-untyped-def]
        stamp(conn, revision)  # the upgrade now holds the write lock, half done
        seen.append(subprocess.run(
            [sys.executable, "-m", "mailconsole", "--db", str(v1), "serve", "--transport", "null:"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        ))

    monkeypatch.setattr(migrate, "stamp", stamp_then_start_an_engine)
    r = cli("migrate")
    assert r.code == 0 and f"schema 1 → {HEAD}" in r.out, r.err
    [serve] = seen
    assert serve.returncode == 1 and "schema version 1, older" in one_line(serve.stderr)
    conn = sqlite3.connect(v1)
    assert conn.execute("SELECT count(*) FROM engines WHERE id NOT LIKE 'mx1:%'").fetchone()[0] == 0
    conn.close()


def test_migrate_upgrades_says_what_it_did_then_has_nothing_to_do(cli, v1):
    r = cli("migrate")
    assert r.code == 0, r.err
    [backup] = backups(v1)
    assert f"store {v1}: schema 1 → {HEAD} (backup of schema 1: {backup};" in r.out
    assert version(v1) == str(HEAD)
    again = cli("migrate")
    assert again.code == 0 and f"store {v1}: schema {HEAD} is current; nothing to do" in again.out
    assert backups(v1) == [backup]
    status = cli("status")
    assert status.code == 0 and "STOPPED" in status.out.upper()


def test_migrate_dry_run_prints_both_versions_and_changes_nothing(cli, v1):
    r = cli("migrate", "--dry-run")
    assert r.code == 0, r.err
    assert f"store {v1}: schema 1, target {HEAD};" in r.out and "nothing changed" in r.out
    assert version(v1) == "1" and backups(v1) == []
    assert cli("status").code == 1


def test_migrate_is_refused_by_a_read_only_invocation(cli, v1):
    r = cli("--read-only", "migrate")
    assert r.code == 1 and "read-only" in one_line(r.err)
    assert version(v1) == "1" and backups(v1) == []


def test_migrate_on_a_new_store_has_nothing_to_do(cli, db):
    assert cli("init").code == 0
    r = cli("migrate")
    assert r.code == 0 and f"schema {HEAD} is current; nothing to do" in r.out
    assert backups(Path(db)) == []


def test_migrate_refuses_a_missing_store_and_creates_nothing(cli, db):
    r = cli("migrate")
    missing = "holds no mailconsole store" if ON_POSTGRESQL else "no store at"  # a database, or no file
    assert r.code == 1 and missing in one_line(r.err) and "mailconsole init" in r.err
    assert not Path(db).exists()


def test_migrate_refuses_a_newer_store_naming_both_versions(cli, v1):
    conn = sqlite3.connect(v1)
    with conn:
        conn.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    conn.close()
    r = cli("migrate")
    assert r.code == 1 and f"schema version 7, newer than this mailconsole understands ({HEAD})" in one_line(r.err)
    assert version(v1) == "7" and backups(v1) == []


def test_migrate_refuses_while_an_engine_heartbeats(cli, v1):
    conn = sqlite3.connect(v1)
    with conn:
        conn.execute("UPDATE engines SET heartbeat_at=?, pid=777", (time.time(),))
    conn.close()
    r = cli("migrate")
    assert r.code == 1
    assert "has a live engine mx1:4242:0f1e2d3c (pid 777 on mx1" in one_line(r.err) and "before migrating" in r.err
    assert version(v1) == "1" and backups(v1) == []


def _previous_release(tmp: Path) -> Path:
    """The first release's source tree, from git; skips when the history is not at hand."""
    repo = Path(__file__).resolve().parents[2]
    try:
        if subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"],
                          capture_output=True, timeout=30).returncode != 0:
            pytest.skip(f"commit {PREVIOUS_RELEASE} is not in this checkout's history")
        archive = subprocess.run(["git", "-C", str(repo), "archive", PREVIOUS_RELEASE, "src"],
                                 capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"git cannot give the previous release: {exc}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "src"


def _live_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT count(*) FROM engines WHERE state != 'stopped' AND heartbeat_at > ?", (time.time() - 5,)
        ).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.slow
def test_migrate_refuses_while_the_previous_releases_serve_runs_then_upgrades(cli, v1, tmp_path):
    """The engine that can be live on a version 1 store is one of the release that made it."""
    src = _previous_release(tmp_path / "previous")
    env = {**os.environ, "PYTHONPATH": str(src)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "mailconsole", "--db", str(v1), "serve", "--transport", "null:", "--workers", "1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert "sending via" in serve.stdout.readline()
        deadline = time.monotonic() + 20
        while not _live_rows(v1):
            assert time.monotonic() < deadline, "the previous release's engine never heartbeat"
            time.sleep(0.05)
        r = cli("migrate")
        assert r.code == 1, r.out
        line = one_line(r.err)
        assert f"(pid {serve.pid} on " in line and "stop it before migrating (nothing changed)" in line
        assert version(v1) == "1" and backups(v1) == []
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=10)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, serve.stderr.read()
    r = cli("migrate")
    assert r.code == 0 and f"schema 1 → {HEAD}" in r.out, r.err
    assert cli("status").code == 0
