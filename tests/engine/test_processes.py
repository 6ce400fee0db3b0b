"""Engines as separate `mailconsole serve` processes on one store: no double sends, crash recovery."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mailconsole.store.engines import list_engines
from mailconsole.store.mailings import get_mailing

from .conftest import add_mailing, message_rows, serve, wait

pytestmark = pytest.mark.slow


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(
        "[engine]\nworkers = 4\nlease_seconds = 2.0\nmaintenance_interval = 0.2\n"
        "idle_claim_interval = 0.02\nretry_base = 0.1\nshutdown_grace = 2.0\n",
        encoding="utf-8",
    )
    return path


def test_two_engine_processes_never_send_twice(store, tmp_path, smtpd_factory, config):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 1500)
    db = store.url
    procs = [serve(db, ctl.port, config, "--batch", "20") for _ in range(2)]
    try:
        wait(lambda: len(list_engines(store)) == 2, 20)
        wait(lambda: get_mailing(store, mid).sent == 1500)
        senders = {e.id: e.sent_total for e in list_engines(store)}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = {r: len(ms) for r, ms in handler.by_rcpt().items()}
    assert len(counts) == 1500 and set(counts.values()) == {1}
    assert all(n > 0 for n in senders.values())  # both engines really sent
    assert all("stopped:" in out for out, _ in outputs)
    assert {row[0] for row in message_rows(store, mid).values()} == {"sent"}


def test_kill_9_mid_send_then_restart_delivers_everyone(store, tmp_path, smtpd_factory, config):
    ctl, handler = smtpd_factory()
    n = 1500
    mid = add_mailing(store, tmp_path, n)
    db = store.url
    first = serve(db, ctl.port, config, "--rate", "600")
    try:
        wait(lambda: get_mailing(store, mid).sent >= 200, 30)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)
    m = get_mailing(store, mid)
    assert m.in_flight > 0 and m.sent < n  # it died holding claims
    second = serve(db, ctl.port, config)
    try:
        wait(lambda: get_mailing(store, mid).sent == n, 60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    assert second.returncode == 0
    counts = {r: len(ms) for r, ms in handler.by_rcpt().items()}
    assert len(counts) == n  # every recipient delivered
    rows = message_rows(store, mid)
    duplicates = {r for r, c in counts.items() if c > 1}
    recovered = {r for r, row in rows.items() if row[3] > 0}
    assert duplicates <= recovered  # duplicates only among messages taken back from the dead engine
    m = get_mailing(store, mid)
    assert m.recovered == len(recovered)
    print(f"\nkill -9: {len(recovered)} recovered leases, {len(duplicates)} duplicates delivered")


def test_sigterm_mid_send_leaves_nothing_claimed(store, tmp_path, smtpd_factory, config):
    ctl, handler = smtpd_factory()
    mid = add_mailing(store, tmp_path, 2000)
    proc = serve(store.url, ctl.port, config, "--rate", "400")
    try:
        wait(lambda: get_mailing(store, mid).sent >= 50, 30)
        assert get_mailing(store, mid).in_flight > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    m = get_mailing(store, mid)
    assert m.in_flight == 0 and m.sent + m.queued == 2000
    assert "claimed" not in {row[0] for row in message_rows(store, mid).values()}
    assert len(handler.messages) == m.sent  # everything delivered was recorded
    assert [e.state for e in list_engines(store, include_gone=True)] == ["stopped"]

