"""Stop under load: three engine processes at full rate, `mailconsole stop` at random moments.

The server is bench/recording_sink.py in its own process: it stamps every end-of-data
dot it accepts, so its clock is not held up by this test. Promise 1 is checked in
every round (no dot accepted after `stop` returned), and every engine must
acknowledge the stop in `status --json`. After the last resume everything is sent
exactly once (no process died, so no duplicate is allowed).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.conftest import add_mailing, free_port, wait
from mailconsole.store import accounts
from mailconsole.store.engines import live_engines
from mailconsole.store.mailings import get_mailing

from . import accounting
from .procs import EngineProcess, cli, status

pytestmark = pytest.mark.slow  # real processes, servers and seconds of sending

SINK = Path(__file__).resolve().parents[2] / "bench" / "recording_sink.py"


@pytest.fixture
def dot_sink(tmp_path: Path):
    """(port, file of accept times) of a recording sink process."""
    port, stamps = free_port(), tmp_path / "dots.txt"
    stamps.write_text("")
    proc = subprocess.Popen([sys.executable, str(SINK), str(port), str(stamps)])
    wait(lambda: _listening(port), 30)
    yield port, stamps
    proc.terminate()
    proc.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def accepted_times(stamps: Path) -> list[float]:
    return [float(x) for x in stamps.read_text().split()]


def test_stop_at_random_moments_under_full_load(store, tmp_path: Path, engine_toml, dot_sink):
    seed = int(os.environ.get("TORTURE_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    port, stamps = dot_sink
    n = 16_000  # the stop command's own start-up lets ~3,000 go per round at full rate
    mid = add_mailing(store, tmp_path, n)
    db, logs = tmp_path / "store.db", tmp_path / "logs"
    logs.mkdir()
    config = engine_toml(workers=4, batch=100)
    engines = [EngineProcess(f"engine{i}", db, port, config, logs) for i in range(3)]
    rounds = []
    try:
        for e in engines:
            e.start()
        wait(lambda: len(live_engines(store)) == 3, 60)
        for round_ in range(4):
            target = get_mailing(store, mid).sent + rnd.randint(100, 800)
            wait(lambda: get_mailing(store, mid).sent >= min(target, n - 500), 120)
            in_flight = get_mailing(store, mid).in_flight
            cli(db, "stop", "--reason", f"round {round_}")
            returned = time.time()
            account = accounts.state(store)
            generation = account.generation
            wait(lambda: all(e.acknowledged_generation(account.id) == generation for e in live_engines(store)), 60)
            acknowledged = time.time()
            st = status(db)
            assert st["stopped"] and st["generation"] == generation
            live = [e for e in st["engines"] if e["alive"]]
            assert len(live) == 3
            assert all(e["acknowledged_generation"] == generation for e in live), live
            time.sleep(0.5)  # a dot let through by mistake would arrive by now
            late = [t for t in accepted_times(stamps) if t > returned]
            rounds.append((in_flight, len(late)))
            # An engine acknowledges only once every dot its gate let through is written:
            # nothing may arrive after that, however loaded the machine.
            assert not [t for t in late if t > acknowledged], f"round {round_}: dots after every engine acknowledged"
            # Promise 1 proper: the stop passes the dot fence before it returns, so even a
            # sender descheduled between its gate read and its dot has written it by then.
            assert not late, f"round {round_}: {len(late)} dot(s) accepted after `stop` returned"
            cli(db, "resume", "--yes")
        wait(lambda: get_mailing(store, mid).sent == n, 150)
    finally:
        exits = [e.stop() for e in engines]
    assert exits == [0, 0, 0], [e.log() for e in engines]
    report = accounting.check(store)
    assert report.states["sent"] == n and report.recovered == 0
    assert len(accepted_times(stamps)) == n  # each accepted exactly once
    print(f"\nseed {seed}; per round (in flight at the stop, accepted after it returned): {rounds}")
