"""On PostgreSQL the dot fence spans hosts: a stop waits for every engine, for a bounded time.

Two `mailconsole serve` processes send to one recording SMTP server; one of them is
frozen with SIGSTOP (what a host cut off from the store looks like to the others: it
neither reads nor acknowledges; a network-namespace partition is not built here).
`mailconsole stop --bound 5 --json` must return, name the frozen engine with the
moment it is certain to have stopped, and, once it is thawed long after, the server
must receive nothing from it past that moment: the engine fails closed on a gate
answer older than its deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from .conftest import MAILCONSOLE, add_mailing, serve, wait

from mailconsole.engine.gate import FAIL_CLOSED_AFTER
from mailconsole.store import Store, accounts
from mailconsole.store import engines as engine_rows


def test_a_frozen_engine_is_named_by_a_bounded_stop_and_sends_nothing_after_its_deadline(
    pg_url, tmp_path: Path, smtpd_factory
) -> None:
    controller, handler = smtpd_factory()
    store = Store(pg_url)
    add_mailing(store, tmp_path, 3000)
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\nworkers = 4\nrate = 200\nheartbeat_interval = 0.2\nlease_seconds = 30\n",
                      encoding="utf-8")
    procs = [serve(pg_url, controller.port, config, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(2)]
    frozen = procs[1]
    try:
        wait(lambda: len(engine_rows.live_engines(store)) == 2 and len(handler.messages) > 50, timeout=120)
        os.kill(frozen.pid, signal.SIGSTOP)
        time.sleep(0.3)
        asked = time.time()
        # The running engine acknowledges in milliseconds, but must within the bound not to
        # be named too; the frozen one never does (gone only after a minute of silence).
        r = subprocess.run([MAILCONSOLE, "--db", pg_url, "stop", "--bound", "5", "--json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        committed = accounts.state(store).stopped_at
        assert out["stopped"] and not out["confirmed"], out
        assert [u["pid"] for u in out["unconfirmed"]] == [frozen.pid], out
        returned = time.time()
        # From the commit (the stop's own time is taken just before it) plus the deadline.
        assert committed + FAIL_CLOSED_AFTER <= out["unconfirmed"][0]["certain_by"] <= returned + FAIL_CLOSED_AFTER
        # The engine that runs acknowledged the stop.
        generation = accounts.state(store).generation
        live = {e.pid: e for e in engine_rows.live_engines(store)}
        assert live[procs[0].pid].acknowledged_generation(1) >= generation
        time.sleep(FAIL_CLOSED_AFTER + 0.5)
        os.kill(frozen.pid, signal.SIGCONT)
        time.sleep(2.0)  # long enough for anything it still held to reach the server
        late = [m for m in handler.messages if m.at > committed + FAIL_CLOSED_AFTER]
        assert late == [], f"{len(late)} messages reached the server after the frozen engine's deadline"
        # Thawed, it reads the stop and acknowledges it.
        wait(lambda: engine_rows.live_engines(store) and all(
            e.acknowledged_generation(1) >= generation for e in engine_rows.live_engines(store)), timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        store.close()
