"""Promise 5: the stop survives restarts of every process, and of the machine.

Process restarts are tested for real: stop, SIGKILL every engine, start new ones;
nothing is sent until an operator resumes. A machine restart (power loss) cannot
be staged here, so the test checks what makes the stop survive one: its commit
runs with `synchronous=FULL`, which makes SQLite sync the WAL to disk before the
commit returns (with the default NORMAL a crash of the machine may lose it).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

import pytest

from engine.conftest import OPERATOR, add_mailing, wait
from mailconsole.store import accounts
from mailconsole.store.engines import live_engines
from mailconsole.store.mailings import get_mailing

from . import accounting
from .procs import EngineProcess, cli, status

pytestmark = pytest.mark.slow  # real processes, servers and seconds of sending


def test_stop_holds_across_kill_9_of_every_engine(store, tmp_path: Path, smtpd_factory, engine_toml):
    ctl, handler = smtpd_factory()
    n = 600
    mid = add_mailing(store, tmp_path, n)
    db, logs = tmp_path / "store.db", tmp_path / "logs"
    logs.mkdir()
    config = engine_toml()
    engines = [EngineProcess(f"engine{i}", db, ctl.port, config, logs, "--rate", "100") for i in range(2)]
    try:
        for e in engines:
            e.start()
        wait(lambda: get_mailing(store, mid).sent >= 50, 60)
        cli(db, "stop", "--reason", "wrong mailing")
        for e in engines:
            e.kill9()
        accepted = len(handler.messages)
        for e in engines:
            e.start()
        wait(lambda: len(live_engines(store)) == 2, 60)
        # Until the dead engines' claims are back in the queue (their 2 s leases expired, on
        # whatever the machine's load makes of the new engines' maintenance), unless the new
        # engines send meanwhile: with the rest queued all along, ones that ignored the stop would.
        wait(lambda: get_mailing(store, mid).in_flight == 0 or len(handler.messages) > accepted, 30)
        assert status(db)["stopped"] is True
        assert len(handler.messages) == accepted  # nothing sent by the new engines while stopped
        assert get_mailing(store, mid).in_flight == 0
        cli(db, "resume", "--yes")
        wait(lambda: get_mailing(store, mid).sent == n, 120)
    finally:
        exits = [e.stop() for e in engines]
    assert exits == [0, 0]
    accounting.check(store, accounting.deliveries(m.data for m in handler.messages))


def test_the_stop_commit_is_synced_to_disk(store):
    seen: list[int] = []

    def on_commit(conn) -> None:  # type: ignore[no-untyped-def]
        # Still inside the transaction's connection, just before COMMIT is sent.
        seen.append(conn.connection.driver_connection.execute("PRAGMA synchronous").fetchone()[0])

    event.listen(store.engine, "commit", on_commit)
    try:
        accounts.stop(store, OPERATOR, reason="durability")
    finally:
        event.remove(store.engine, "commit", on_commit)
    assert seen == [2]  # FULL
    assert accounts.state(store).stopped
