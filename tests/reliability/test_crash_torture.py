"""Crash torture: engines and a console with an embedded engine, killed with SIGKILL at random.

Three `mailconsole serve` processes and one console (under tmux, with the engine
it starts inside itself) share a store and send to a recording SMTP server that
is slow on purpose, so every victim dies holding claims. After the rounds the
survivors finish the queue; then promises 2-4 are checked against what the
server really accepted. bench/torture.py runs it again and again with new seeds.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.conftest import RecordingHandler, add_mailing, wait
from mailconsole.store.engines import list_engines
from mailconsole.store.mailings import get_mailing

from . import accounting
from .procs import ConsoleProcess, EngineProcess

pytestmark = pytest.mark.slow  # real processes, servers and seconds of sending


@dataclass
class SlowHandler(RecordingHandler):
    """Takes its time over each end of data, as a loaded relay does: senders hold claims longer."""

    delay: float = 0.05

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def engine_of(store, pid: int):  # type: ignore[no-untyped-def]
    return next((e for e in list_engines(store) if e.pid == pid and e.alive), None)


def test_kill_9_engines_and_console_at_random(store, tmp_path: Path, smtpd_factory, engine_toml):
    seed = int(os.environ.get("TORTURE_SEED", random.randrange(1 << 30)))
    rnd = random.Random(seed)
    print(f"\nseed {seed} (TORTURE_SEED reproduces the kill order)")
    ctl, handler = smtpd_factory(SlowHandler())
    ids = [add_mailing(store, tmp_path, 1500, name=f"torture {i}") for i in range(2)]
    db, logs = tmp_path / "store.db", tmp_path / "logs"
    logs.mkdir()
    config = engine_toml(batch=20)
    console = ConsoleProcess(db, ctl.port, logs)
    engines = [EngineProcess(f"engine{i}", db, ctl.port, config, logs) for i in range(3)]
    victims = [console, *engines]
    kills: list[str] = []
    try:
        # The console first: with no engine running it starts one inside itself.
        console.start()
        wait(lambda: engine_of(store, console.pid) is not None, 60)
        wait(lambda: engine_of(store, console.pid).sent_total > 0, 60)  # type: ignore[union-attr]
        # Textual really draws on the terminal: the banner, and its own engine in the engines table.
        wait(lambda: "RUNNING" in (screen := console.screen()) and str(console.pid) in screen, 60)
        for e in engines:
            e.start()
        wait(lambda: sum(1 for e in list_engines(store) if e.alive) == 4, 60)
        # Round 0 always kills the console while its embedded engine holds claims;
        # the others pick a victim at random, each restarted at once.
        for round_ in range(6):
            victim = console if round_ == 0 else rnd.choice(victims)
            if round_:
                time.sleep(rnd.uniform(0.3, 1.5))
            victim.kill9()
            kills.append(victim.name)
            victim.start()
        # The console's embedded engine used the default 30 s lease: its claims come back then.
        wait(lambda: all(_done(store, mid) for mid in ids), 150)
    finally:
        exits = [e.stop() for e in engines]
        console.stop()
        console.close()
    assert exits == [0, 0, 0], [e.log() for e in engines]
    report = accounting.check(store, accounting.deliveries(m.data for m in handler.messages))
    assert report.states["sent"] == 3000
    assert report.recovered > 0  # the kills really left claims behind
    recovered = sum(get_mailing(store, mid).recovered for mid in ids)
    print(f"kills: {kills}; recovered leases: {recovered} messages; duplicates at the server: "
          f"{report.duplicates} messages ({report.extra_copies} extra copies), all among the recovered")


def _done(store, mailing_id: int) -> bool:  # type: ignore[no-untyped-def]
    m = get_mailing(store, mailing_id)
    return m.queued == 0 and m.in_flight == 0
