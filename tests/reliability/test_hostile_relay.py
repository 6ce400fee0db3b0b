"""Whatever the relay does, `mailconsole serve` stays in charge of itself.

Against a server that answers EHLO without end, one that trickles a byte a
second, one that greets with a 10 MB line and one that never answers the dot,
a real `serve` process keeps its memory bounded, keeps heartbeating, has a
`mailconsole stop` acknowledged in its usual time, and exits on SIGTERM (or
SIGINT) within seconds with nothing left claimed. Its default shutdown grace is used: that is
what an operator gets.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from engine.conftest import add_mailing
from mailconsole.store import accounts
from mailconsole.store.engines import EngineInfo, list_engines
from mailconsole.store.mailings import get_mailing

from .hostile import HostileServer
from .procs import EngineProcess, cli

pytestmark = pytest.mark.slow

RSS_LIMIT_MB = 200
# s; usually tens of ms (docs/benchmarks.md). An engine held by the server would wait
# out the command open when the stop comes (most of COMMAND_TIMEOUT is left by then).
ACK_WITHIN = 5.0
# A heartbeat is due every 0.2 s; on a loaded machine one can come late by a second
# (a WAL checkpoint waiting for the disk), which is still far from "stopped heartbeating".
BEAT_WITHIN = 2.5
# s after SIGTERM: the shutdown grace (2.5 s) and the close-down; one held by the server
# would wait for its deadline (COMMAND_TIMEOUT, or 120 s for the dot's reply).
EXIT_WITHIN = 8.0
CONNECT_TIMEOUT = 2.0  # the greeting's deadline
# Each command's: long enough that a stop finds a command open for well over ACK_WITHIN.
COMMAND_TIMEOUT = 20.0
# The server sees the client hang up only between two bytes of its trickle, a second
# apart, and may then be slow to run; a deadline per byte read would never end it.
NOTICED_WITHIN = 3.0

# What the engine's note must say about each server (None: it has no problem to report).
REASONS = {
    "endless_ehlo": "reply to EHLO is over 100 lines",
    "trickle": "timeout",
    "long_line": "over 4,096 bytes",
    "silent_dot": None,
}

# Ctrl-C where a terminal would send it; SIGTERM (a service manager's stop) for the others.
SIGNALS = {"long_line": signal.SIGINT}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def engine_row(store) -> EngineInfo:  # type: ignore[no-untyped-def]
    rows = list_engines(store, include_gone=True)
    assert len(rows) == 1, rows
    return rows[0]


def wait_until(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    """Poll until true; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.mark.parametrize("behaviour", list(REASONS))
def test_a_hostile_relay_cannot_outlive_the_stop(behaviour: str, store, tmp_path: Path) -> None:
    mid = add_mailing(store, tmp_path, 40)
    db = tmp_path / "store.db"
    config = tmp_path / "engine.toml"
    config.write_text(
        "[engine]\nworkers = 4\nheartbeat_interval = 0.2\nidle_claim_interval = 0.02\n"
        f"connect_timeout = {CONNECT_TIMEOUT}\ncommand_timeout = {COMMAND_TIMEOUT}\n",
        encoding="utf-8",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    with HostileServer(behaviour) as server:
        engine = EngineProcess("serve", db, server.port, config, logs)
        engine.start()
        try:
            if behaviour == "silent_dot":
                wait_until(lambda: server.dots >= 4, 30, "four dots")
            elif behaviour == "trickle":
                # The first EHLO ends at its deadline (one deadline, not one per byte read)...
                wait_until(lambda: any(c.closed for c in server.connections), 30, "a connection given up")
                first = next(c for c in server.connections if c.closed)
                assert COMMAND_TIMEOUT - 0.5 < first.closed - first.opened < COMMAND_TIMEOUT + NOTICED_WITHIN  # type: ignore[operator]
                time.sleep(1.0)  # ...and the next try is under way when the stop comes
            else:
                wait_until(lambda: len(server.connections) >= 2, 30, "a second connection")
            # A few seconds in the server's grip: memory bounded, heartbeats on time.
            peak, beats = 0.0, set()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                peak = max(peak, rss_mb(engine.pid))
                row = engine_row(store)
                beats.add(row.heartbeat_at)
                assert store.now() - row.heartbeat_at < BEAT_WITHIN, f"no heartbeat for {store.now() - row.heartbeat_at:.1f} s"
                time.sleep(0.1)
            assert len(beats) >= 5, f"only {len(beats)} heartbeats in 3 s"
            assert peak < RSS_LIMIT_MB, f"serve grew to {peak:.0f} MB"
            reason = REASONS[behaviour]
            if reason is not None:
                assert reason in (engine_row(store).note or ""), engine_row(store).note
                assert "messages are kept" in (engine_row(store).note or "")  # an outage, not failures

            cli(db, "stop", "--reason", "hostile relay")
            generation = accounts.state(store).generation
            account = accounts.state(store).id
            took = wait_until(lambda: engine_row(store).acknowledged_generation(account) == generation,
                              ACK_WITHIN, "the stop's acknowledgement")
            print(f"\n{behaviour}: stop acknowledged {took * 1000:.0f} ms after `mailconsole stop` returned, "
                  f"peak RSS {peak:.0f} MB")
            if behaviour != "silent_dot":  # no dot was written: nothing of the mailing may stay in flight
                wait_until(lambda: get_mailing(store, mid).in_flight == 0, ACK_WITHIN, "the claims' return")
        finally:
            start = time.monotonic()
            if engine.proc is not None and engine.proc.poll() is None:
                engine.proc.send_signal(SIGNALS.get(behaviour, signal.SIGTERM))
            try:
                rc = engine.proc.wait(30) if engine.proc is not None else None
            except subprocess.TimeoutExpired:
                engine.kill9()  # it ignored SIGTERM: do not leave it behind
                rc = None
            elapsed = time.monotonic() - start
        log = engine.log()
    assert rc == 0, log
    name = SIGNALS.get(behaviour, signal.SIGTERM).name
    assert elapsed < EXIT_WITHIN, f"serve took {elapsed:.1f} s to exit on {name}\n{log}"
    print(f"{behaviour}: exited {elapsed:.2f} s after {name}")
    if REASONS[behaviour] is not None:
        assert REASONS[behaviour] in log, log  # the log says why, too
    m = get_mailing(store, mid)
    assert m.in_flight == 0 and m.sent == 0
    assert m.failed == 0  # an unusable server fails no message: they wait for it
    assert engine_row(store).state == "stopped"
    if behaviour == "trickle":  # no command outlived its deadline
        held = [c.closed - c.opened for c in server.connections if c.closed is not None]
        assert held and max(held) < COMMAND_TIMEOUT + NOTICED_WITHIN, held
    if behaviour == "silent_dot":  # cut after their dots: counted as possibly delivered
        assert m.recovered >= 4


def test_the_serve_log_shows_a_relay_reply_escaped(store, tmp_path: Path) -> None:
    """Control characters and bidirectional overrides from a server reach the log as escapes."""
    add_mailing(store, tmp_path, 3)
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\nworkers = 1\nheartbeat_interval = 0.2\n", encoding="utf-8")
    logs = tmp_path / "logs"
    logs.mkdir()
    with HostileServer("terminal_tricks") as server:
        engine = EngineProcess("serve", tmp_path / "store.db", server.port, config, logs)
        engine.start()
        try:
            wait_until(lambda: "cannot use the mail server" in engine.log(), 30, "the outage in the log")
        finally:
            assert engine.stop() == 0
    log = engine.log()
    line = next(x for x in log.splitlines() if "cannot use the mail server" in x)
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x0dFAKE" in line and "\\u202etxt.exe\\x9b" in line, line
    assert not any(c in log for c in "\x1b\x07\r\u202e\x9b"), repr(log)
