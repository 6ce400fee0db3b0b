"""Fixtures of the many-hosts tests: one namespace cluster per module (tests/hosts/cluster.py).

The tests need root (network namespaces), iproute2 and PostgreSQL; elsewhere they
skip and say which is missing. They run in the PostgreSQL pass of `make test`
(MAILCONSOLE_TEST_BACKEND=postgresql) and skip in the SQLite one. Whatever they start is removed at the end, also
when a test fails or the run is interrupted (a SIGTERM is turned into an exception
so that the cleanup runs; a SIGKILLed run's leftovers are swept by the next).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from store_backend import ON_POSTGRESQL

from .cluster import Cluster
from .netns import sweep_stale, unavailable


def _skip_reason() -> str | None:
    from pg_server import find_bindir

    if not ON_POSTGRESQL:
        # They bring their own server whatever the backend: once per `make test` is enough.
        return "they run in the PostgreSQL pass (MAILCONSOLE_TEST_BACKEND=postgresql)"
    if sys.platform != "linux":
        return "network namespaces are Linux's"
    why = unavailable()
    if why:
        return why
    if find_bindir() is None:
        return "no PostgreSQL binaries (initdb, postgres): install Debian's postgresql package"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    why = _skip_reason()
    if why:
        pytest.skip(f"several hosts on one machine: {why}")
    sweep_stale()

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminated)
    work = tmp_path_factory.mktemp("hosts")  # the dots file and each engine host's log: kept by pytest for a while
    env = pytest.MonkeyPatch()
    try:
        with Cluster(work) as c:
            for name, value in c.pg.env().items():  # the test's own connections log in too
                env.setenv(name, value)
            yield c
    finally:
        env.undo()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def url(cluster: Cluster) -> Iterator[str]:
    """A fresh database on the cluster's server; the dots file emptied; every engine ended after."""
    cluster.clear_dots()
    made = cluster.new_store()
    yield made
    for host in cluster.engine_hosts:
        for link in host.links.values():
            subprocess.run(["ip", "-n", host.netns, "link", "set", link, "up"], capture_output=True)
        host.kill_all()
        for p in host.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        host.processes.clear()
    if not cluster.pg.running:
        cluster.pg.start()
    cluster.pg.drop_database(made.rsplit("/", 1)[1])
