"""`stop`, `pause` and `delete` never fail because the store is busy: they wait, say why, and apply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from store_backend import sqlite_only
from lockholder import lock_held

def status(cli) -> dict:
    return json.loads(cli("status", "--json").out)


@pytest.mark.parametrize("command", ["stop", "pause", "delete"])
@sqlite_only("holds SQLite's write lock from another process (tests/lockholder.py)")
def test_the_command_waits_for_a_busy_store_and_applies(cli, db, mailing, command):
    """Before, `stop` failed with "locked by another writer" (exit 1) after the busy timeout.

    The lock is held until the command has said that it waits, then for two seconds
    more (far beyond the 0.3 s busy timeout given to it), then released.
    """
    cli("init")
    mid = mailing(3)
    args = {"stop": ["stop"], "pause": ["pause", str(mid)], "delete": ["delete", str(mid), "--yes"]}[command]
    with lock_held(db) as holder:
        proc = subprocess.Popen([sys.executable, "-m", "mailconsole", "--db", db, *args], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "MAILCONSOLE_BUSY_TIMEOUT_MS": "300"})
        try:
            first = proc.stderr.readline()
            time.sleep(2.0)
            assert proc.poll() is None  # still waiting, not failed
            holder.kill()
            holder.wait()
            rest = proc.stderr.read()
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    err = first + rest
    assert code == 0, err
    waiting = [line for line in err.splitlines() if "waiting for the store" in line]
    assert waiting and f"locked by pid {holder.pid} (long_writer.py" in waiting[0], err
    assert waiting[0].endswith("; retrying")
    assert 1 <= len(waiting) <= 6  # at once, then about once a second: not at every try
    assert "Traceback" not in err
    if command == "stop":
        assert status(cli)["stopped"] is True
    else:
        listed = {m["id"]: m["status"] for m in json.loads(cli("mailings", "--json", "--planned").out)}
        assert listed.get(mid) == ("paused" if command == "pause" else None)


@sqlite_only("holds SQLite's write lock from another process (tests/lockholder.py)")
def test_a_stop_interrupted_while_waiting_says_it_was_not_applied(cli, db, mailing):
    cli("init")
    mailing(3)
    with lock_held(db):
        proc = subprocess.Popen([sys.executable, "-m", "mailconsole", "--db", db, "stop"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            while not any("waiting for the store" in line for line in lines):
                line = proc.stderr.readline()
                assert line, "the stop ended without waiting"
                lines.append(line)
            proc.send_signal(signal.SIGINT)
            rest = proc.stderr.read()
            code = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 130
    assert "the stop was NOT applied" in rest and "Traceback" not in rest
    assert "stop intent stays" in rest
    st = status(cli)
    assert st["stopped"] is False
    # The intent posted while waiting outlived its writer: it holds the account (fail
    # closed) and status says so, until resume clears it.
    assert st["stop_intent"] is not None and st["stop_intent"]["writer_alive"] is False
    assert "STOP INTENT NOT APPLIED" in cli("status").out
    r = cli("resume", "--yes")
    assert r.code == 0 and "stop intent cleared" in r.out
    assert status(cli)["stop_intent"] is None
    assert not os.listdir(db + "-stop-intents") or os.listdir(db + "-stop-intents") == [".lock"]
