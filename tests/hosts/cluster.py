"""A small mail cluster on namespace hosts: the store, the mail server, engines, an operator.

Two nets, as a real site has them: the *store net* joins PostgreSQL, the
engines and the operator's host; the *mail net* joins the engines and the
mail server. Cutting an engine host's store link therefore leaves its mail link
up: what stops its sending is the engine failing closed, not a dead socket.

    pg        store net        PostgreSQL (tests/pg_server.py), port 5432
    mx        mail net         bench/recording_sink.py, port 2525: one line per accepted
                               dot, "TIME PEER RCPT", TIME the kernel's receive stamp
    engine-a  store + mail     `mailconsole serve` (real processes), host name engine-a
    engine-b, engine-c         likewise
    operator  store net        `mailconsole stop`

The machine itself is on both nets (the bridges' first addresses): the test
reads the store and the dots file from there.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .netns import Host, Hosts
from .pg_host import HostedPgServer

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
SINK = Path(__file__).resolve().parents[2] / "bench" / "recording_sink.py"
SMTP_PORT = 2525


@dataclass(frozen=True)
class Dot:
    """One message the mail server accepted: when its dot arrived, from which host, for whom."""

    at: float
    peer: str
    rcpt: str


class Cluster:
    def __init__(self, work: Path, engines: int = 3, pg_settings: dict[str, str] | None = None) -> None:
        """pg_settings: server settings beyond the tests' own (a benchmark's track_commit_timestamp)."""
        self.work = work
        self.net = Hosts()
        try:
            self._build(engines, pg_settings)
        except BaseException:
            self.close()
            raise

    def _build(self, engines: int, pg_settings: dict[str, str] | None) -> None:
        self.store_net = self.net.net()
        self.mail_net = self.net.net()
        self.pg_host = self.net.host("pg", [self.store_net])
        self.mx = self.net.host("mx", [self.mail_net])
        self.engine_hosts = [self.net.host(f"engine-{chr(ord('a') + i)}", [self.store_net, self.mail_net])
                             for i in range(engines)]
        self.operator = self.net.host("operator", [self.store_net])
        self.pg = HostedPgServer(self.pg_host, self.pg_host.address(self.store_net), settings=pg_settings)
        self.pg.start()
        self.env = {**os.environ, **self.pg.env()}
        self.dots_file = self.work / "dots.txt"
        self.dots_file.write_text("")
        self.mx_address = self.mx.address(self.mail_net)
        self.mx.popen([sys.executable, str(SINK), str(SMTP_PORT), str(self.dots_file), "--host", self.mx_address,
                       "--peers"])
        _wait_listening(self.mx_address, SMTP_PORT)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pg = getattr(self, "pg", None)
        if pg is not None:
            pg.stop_server(mode="immediate")
        self.net.close()
        if pg is not None:
            pg.stop()

    # -- the store ------------------------------------------------------------

    def new_store(self) -> str:
        """A fresh, empty database on the cluster's server: its URL (the password comes from the environment)."""
        return self.pg.create_database()

    # -- engines and the operator ---------------------------------------------

    def address(self, host: Host) -> str:
        """The host's address on the mail net: the peer the mail server records for it."""
        return host.address(self.mail_net)

    def serve(self, host: Host, url: str, config: Path, *extra: str) -> subprocess.Popen:
        """`mailconsole serve` on `host`, sending to the mail server; its log in the work directory."""
        log = open(self.work / f"{host.name}.log", "ab")
        try:
            return host.popen(
                [MAILCONSOLE, "--db", url, "serve", "--quiet", "--transport", f"smtp://{self.mx_address}:{SMTP_PORT}",
                 "--config", str(config), *extra],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def operate(self, url: str, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`mailconsole --db URL ARGV` on the operator's host."""
        return self.operator.run([MAILCONSOLE, "--db", url, *argv], env=self.env, timeout=timeout)

    # -- what the mail server accepted ------------------------------------------

    def dots(self) -> list[Dot]:
        out = []
        for line in self.dots_file.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append(Dot(float(parts[0]), parts[1], parts[2]))
        return out

    def clear_dots(self) -> None:
        """Forget what was accepted so far (the sink appends: it writes at the new end)."""
        self.dots_file.write_text("")

    def dots_by_host(self, dots: list[Dot] | None = None) -> Counter[str]:
        """Number of dots per engine host name."""
        names = {self.address(h): h.name for h in self.engine_hosts}
        return Counter(names.get(d.peer, d.peer) for d in (self.dots() if dots is None else dots))


def _wait_listening(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def engine_config(path: Path, **values: object) -> Path:
    """An [engine] TOML table of `values` at `path`."""
    lines = ["[engine]"] + [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
