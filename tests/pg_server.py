"""A throwaway PostgreSQL server for the tests: a private cluster in a temporary directory.

`PgServer.start()` runs initdb and the postmaster from the PostgreSQL binaries found on this
machine, listening on 127.0.0.1 on a free port with its own socket directory, with password
(scram-sha-256) authentication for one superuser. The server refuses to run as root, so under
root it runs as an unprivileged system user (scripts/install-system-deps.sh creates it). The
postmaster is a child of this process and asks the kernel to stop it if this process dies, so
a killed test run leaves no server behind either. (The kernel watches the thread that started
it: start servers from the main thread, as pytest's fixtures do.)

Run it by hand to get a server to play with: `python tests/pg_server.py` prints its URL and
keeps it until Ctrl-C.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

# The unprivileged account the server runs as when the tests run as root: created by
# scripts/install-system-deps.sh; Debian's own `postgres` account serves where it is missing.
SERVER_ACCOUNTS = ("mailconsole-pg", "postgres")
SUPERUSER = "mailconsole"
# One password for every server this process starts: PGPASSWORD then serves them all.
PASSWORD = secrets.token_urlsafe(18)
START_TIMEOUT = 30.0
# Settings for a disposable cluster: durability buys nothing here and costs seconds.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


class PgUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def find_bindir() -> Path | None:
    """The directory holding initdb and postgres: PATH first, then Debian's newest version."""
    on_path = shutil.which("initdb")
    if on_path and Path(on_path).resolve().with_name("postgres").exists():
        return Path(on_path).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def server_account() -> pwd.struct_passwd | None:
    """Who runs the server: None means this process's own user (it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_ACCOUNTS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PgUnavailable(
        "running as root and none of the unprivileged accounts "
        f"{', '.join(SERVER_ACCOUNTS)} exists: run scripts/install-system-deps.sh"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # SIGINT is PostgreSQL's "fast shutdown": it disconnects clients and exits cleanly.
    # Runs in the child after the switch of user (which would clear the setting).
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


class PgServer:
    """One private PostgreSQL cluster; `start()` it, `stop()` it (also on a failed start)."""

    def __init__(self, bindir: Path | None = None, settings: dict[str, str] | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PgUnavailable("no PostgreSQL binaries (initdb) on PATH or in /usr/lib/postgresql")
        self.bindir = found
        self.account = server_account()
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.host = "127.0.0.1"
        self.port = 0
        self.user = SUPERUSER
        self.password = PASSWORD
        self.dbname = "postgres"
        # Not under pytest's tmp_path: that is 0700 and root's, out of the account's reach.
        self.base = Path(tempfile.mkdtemp(prefix="mailconsole-pg-", dir=_temp_root(self.account)))
        self.datadir = self.base / "data"
        self.socketdir = self.base / "socket"
        self.logfile = self.base / "server.log"
        self.pgpass = self.base / "pgpass"
        self._process: subprocess.Popen[bytes] | None = None
        self._counter = 0

    # -- addresses ---------------------------------------------------------------------------

    def url(self, dbname: str | None = None) -> str:
        """SQLAlchemy URL without the password (it comes from PGPASSWORD or PGPASSFILE)."""
        return (
            f"postgresql+psycopg://{quote(self.user, safe='')}@{self.host}:{self.port}/"
            f"{quote(dbname or self.dbname, safe='')}"
        )

    def conninfo(self, dbname: str | None = None) -> str:
        """libpq connection string with the password, for psycopg.connect in test code."""
        return psycopg.conninfo.make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.dbname,
        )

    def env(self) -> dict[str, str]:
        """Environment variables through which libpq (and so any subprocess) finds the password."""
        return {"PGPASSWORD": self.password, "PGPASSFILE": str(self.pgpass)}

    def connect(self, dbname: str | None = None, **kwargs) -> psycopg.Connection:
        """An autocommit psycopg connection as the superuser."""
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.conninfo(dbname), **kwargs)

    # -- databases ---------------------------------------------------------------------------

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database (a copy of `template` if given) and return its URL."""
        if name is None:
            self._counter += 1
            name = f"test_{os.getpid()}_{self._counter}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            # FILE_COPY copies the template's files: faster than WAL_LOG for small databases.
            statement += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(template)
            )
        with self.connect() as conn:
            conn.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> PgServer:
        """initdb (first time only) and start the postmaster; returns when it takes connections.

        After stop_server() it starts again on the same port, as a restarted server would.
        """
        try:
            if not self.datadir.exists():
                self._initdb()
            self._launch(port=self.port or None)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, *, mode: str = "fast") -> None:
        """Stop and start again on the same port: clients see their connections drop."""
        self.stop_server(mode=mode)
        self._launch(port=self.port)

    def stop_server(self, *, mode: str = "fast") -> None:
        """Stop the postmaster and wait for it; keeps the data directory."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            signum = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
            process.send_signal(signum)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        self.stop_server()
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------

    def _as_account(self) -> dict:
        if self.account is None:
            return {}
        return {
            "user": self.account.pw_uid,
            "group": self.account.pw_gid,
            "extra_groups": [],
            "env": {**_clean_env(), "HOME": str(self.base)},
        }

    def _initdb(self) -> None:
        self.socketdir.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self.pgpass.write_text(f"*:*:*:{self.user}:{_pgpass_escape(self.password)}\n")
        self.pgpass.chmod(0o600)
        if self.account is not None:
            for path in (self.base, self.socketdir, pwfile):
                os.chown(path, self.account.pw_uid, self.account.pw_gid)
        try:
            subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D", str(self.datadir),
                    "-U", self.user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                cwd=self.base,
                **self._as_account(),
            )
        except subprocess.CalledProcessError as exc:
            raise PgUnavailable(f"initdb failed: {exc.stderr.decode(errors='replace').strip()}") from exc
        finally:
            pwfile.unlink(missing_ok=True)

    def _launch(self, port: int | None = None) -> None:
        attempts = 1 if port else 3  # a free port can be taken between probe and bind
        for attempt in range(attempts):
            self.port = port or free_port()
            options = [f"-c{key}={value}" for key, value in self.settings.items()]
            with open(self.logfile, "ab") as log:
                if self.account is not None:
                    os.chown(self.logfile, self.account.pw_uid, self.account.pw_gid)
                self._process = subprocess.Popen(
                    [
                        str(self.bindir / "postgres"),
                        "-D", str(self.datadir),
                        "-h", self.host,
                        "-p", str(self.port),
                        "-k", str(self.socketdir),
                        *options,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.base,
                    preexec_fn=_die_with_parent,
                    **self._as_account(),
                )
            if self._wait_ready():
                return
            self.stop_server(mode="immediate")
        raise PgUnavailable(f"PostgreSQL did not start; its log:\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                psycopg.connect(self.conninfo(), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _temp_root(account: pwd.struct_passwd | None) -> str | None:
    """Where the cluster's directory goes: the usual temporary directory, unless the
    server's account could not reach it (a root-only TMPDIR); then /tmp."""
    default = tempfile.gettempdir()
    if account is None or os.stat(default).st_mode & 0o001:
        return None
    return "/tmp"


def _clean_env() -> dict[str, str]:
    # The server needs no PG* settings of the caller (PGDATA, PGPORT…) nor its HOME.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "HOME"}


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


if __name__ == "__main__":
    with PgServer() as server:
        print(server.url())
        print(f"PGPASSWORD={server.password}")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
