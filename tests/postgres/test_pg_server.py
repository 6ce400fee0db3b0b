"""The throwaway PostgreSQL server the PostgreSQL tests run against."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa

TESTS = Path(__file__).resolve().parent.parent


def test_url_connects_with_the_password_from_the_environment(pg_url: str) -> None:
    assert ":" not in pg_url.split("//", 1)[1].split("@", 1)[0]  # no password in the URL
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version()")).scalar_one()
            name = conn.execute(sa.text("select current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert version.startswith("PostgreSQL ")
    assert name == pg_url.rsplit("/", 1)[1]


def test_pgpass_alone_is_enough(pg_server, pg_url: str, monkeypatch) -> None:
    monkeypatch.delenv("PGPASSWORD")
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_server_runs_unprivileged_with_password_auth(pg_server) -> None:
    with pg_server.connect() as conn:
        assert conn.execute("show password_encryption").fetchone()[0] == "scram-sha-256"
    assert os.stat(f"/proc/{pg_server.pid}").st_uid != 0
    try:
        psycopg.connect(
            host=pg_server.host, port=pg_server.port, user=pg_server.user,
            password="wrong", dbname="postgres",
        ).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("a wrong password was accepted")


def test_databases_from_a_template_are_copies(pg_server) -> None:
    pg_server.create_database("tmpl_copy_src")
    with pg_server.connect("tmpl_copy_src") as conn:
        conn.execute("create table t (x int); insert into t values (42)")
    url = pg_server.create_database(template="tmpl_copy_src")
    with pg_server.connect(url.rsplit("/", 1)[1]) as conn:
        assert conn.execute("select x from t").fetchone() == (42,)


def test_no_postmaster_outlives_its_test_process(tmp_path: Path) -> None:
    # The test process is killed outright: no teardown runs, the kernel still stops the server.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(TESTS)!r})
        from pg_server import PgServer
        server = PgServer().start()
        print(server.pid, server.base, flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    pid_text, base = result.stdout.split()
    pid = int(pid_text)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    alive = _alive(pid)
    subprocess.run(["rm", "-rf", base], check=False)
    assert not alive, f"postmaster {pid} still running after its parent was killed"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_failed_test_still_stops_the_server(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    (tmp_path / "conftest.py").write_text(textwrap.dedent(
        f"""
        import importlib.util, sys
        sys.path.insert(0, {str(TESTS)!r})
        spec = importlib.util.spec_from_file_location("shared_conftest", {str(TESTS / "conftest.py")!r})
        shared = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shared)
        pg_server = shared.pg_server
        """
    ))
    (tmp_path / "test_fails.py").write_text(textwrap.dedent(
        f"""
        def test_fails(pg_server):
            open({str(pidfile)!r}, "w").write(f"{{pg_server.pid}} {{pg_server.base}}")
            assert False, "on purpose"
        """
    ))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    pid_text, base = pidfile.read_text().split()
    assert not _alive(int(pid_text)), "the server outlived the failed session"
    assert not Path(base).exists(), "the server's directory outlived the failed session"
