"""The tests' throwaway PostgreSQL (tests/pg_server.py) on a host of its own.

The same cluster, settings and unprivileged account; only the start differs: the
binaries are reached through small wrappers that enter the host's network
namespace (`ip netns exec`, which needs root) and then drop to the server's
account (`setpriv`), keeping the parent-death signal across the switch. The
server listens on the host's address; the machine reaches it over the bridge.
"""

from __future__ import annotations

import shlex

from pg_server import PgServer, PgUnavailable

from .netns import Host

PORT = 5432


class HostedPgServer(PgServer):
    """A PgServer listening on `address` inside `host`."""

    def __init__(self, host: Host, address: str, settings: dict[str, str] | None = None) -> None:
        super().__init__(settings=settings)
        if self.account is None:
            raise PgUnavailable("a PostgreSQL server on a namespace host needs root")
        self.host = address
        self.port = PORT
        real = self.bindir
        self.bindir = self.base / "bin"
        self.bindir.mkdir()
        drop = ["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}",
                "--clear-groups", "--reset-env", "--pdeathsig=INT", "--"]
        self._wrap("initdb", [*drop, str(real / "initdb")])
        self._wrap("postgres", ["ip", "netns", "exec", host.netns, *drop, str(real / "postgres")])

    def _wrap(self, name: str, argv: list[str]) -> None:
        path = self.bindir / name
        path.write_text(f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')
        path.chmod(0o755)

    def _initdb(self) -> None:
        super()._initdb()
        # initdb trusts loopback only; the clients here come from the other hosts' addresses.
        with open(self.datadir / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\n")

    def _as_account(self) -> dict:
        return {}  # the wrappers switch to the account, after entering the namespace
