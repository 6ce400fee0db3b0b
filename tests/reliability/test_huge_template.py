"""A template that takes seconds to compile does not take the engine's time with it.

The revision is written straight into the store (a release could have saved it):
3.7 MB of 100,000 `{% if %}` tags, about 20 s of Jinja compilation on the test
machine. Meanwhile `serve` heartbeats, has a stop acknowledged and exits on SIGTERM.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from engine.conftest import add_mailing
from mailconsole.store import accounts
from mailconsole.store.mailings import get_mailing
from mailconsole.store.schema import revisions

from .procs import EngineProcess, cli
from .test_hostile_relay import ACK_WITHIN, BEAT_WITHIN, EXIT_WITHIN, engine_row, wait_until

pytestmark = pytest.mark.slow

SLOW_TO_COMPILE = "{% if name %}{{ name }}{% endif %} y\n" * 100_000


def test_compiling_a_huge_template_keeps_the_engine_answering(store, tmp_path: Path) -> None:
    mid = add_mailing(store, tmp_path, 3)
    with store.write() as conn:
        conn.execute(update(revisions).where(revisions.c.mailing_id == mid).values(text_body=SLOW_TO_COMPILE))
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\nworkers = 2\nheartbeat_interval = 0.2\nidle_claim_interval = 0.02\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    db = tmp_path / "store.db"
    engine = EngineProcess("serve", db, 0, config, logs, "--transport", "null:")
    engine.start()
    try:
        wait_until(lambda: get_mailing(store, mid).in_flight == 3, 30, "the claim")  # compiling from now on
        beats = set()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            row = engine_row(store)
            beats.add(row.heartbeat_at)
            assert store.now() - row.heartbeat_at < BEAT_WITHIN, f"no heartbeat for {store.now() - row.heartbeat_at:.1f} s"
            time.sleep(0.1)
        assert len(beats) >= 5, f"only {len(beats)} heartbeats in 3 s"
        cli(db, "stop")
        generation, account = accounts.state(store).generation, accounts.state(store).id
        took = wait_until(lambda: engine_row(store).acknowledged_generation(account) == generation,
                          ACK_WITHIN, "the stop's acknowledgement")
        print(f"\nstop acknowledged {took * 1000:.0f} ms after `mailconsole stop` returned, while compiling")
    finally:
        start = time.monotonic()
        assert engine.proc is not None
        engine.proc.send_signal(signal.SIGTERM)
        try:
            rc = engine.proc.wait(30)
        except subprocess.TimeoutExpired:
            engine.kill9()
            rc = None
        elapsed = time.monotonic() - start
    assert rc == 0, engine.log()
    assert elapsed < EXIT_WITHIN, f"serve took {elapsed:.1f} s to exit on SIGTERM"
    print(f"exited {elapsed:.2f} s after SIGTERM")
    m = get_mailing(store, mid)
    assert (m.in_flight, m.sent, m.queued) == (0, 0, 3)
