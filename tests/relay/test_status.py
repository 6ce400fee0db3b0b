"""`mailconsole status` shows each relay agent: held, in delivery at the stop, after it, honoured."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from mailconsole.store import Actor, Store, accounts, relays, status

from scenario import MAILCONSOLE

OPERATOR = Actor("operator", "192.0.2.1")


class Agent:
    """An agent's heartbeat as a live agent writes it, every 0.2 s until the test ends: a
    `status` that takes seconds to start on a busy machine still finds the agent alive."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.generation = 0
        self.note: str | None = None
        self._lock = threading.Lock()  # no beat with the values before set() lands after it
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def set(self, generation: int, note: str | None = None) -> None:
        """Beat these from now on; returns once a beat with them is written."""
        with self._lock:
            self.generation, self.note = generation, note
            self._write()
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            with self._lock:
                self._write()

    def _write(self) -> None:
        acc = accounts.state(self.store).id
        ack = relays.StopAck(self.generation, held=1500, in_delivery=10, delivered_after=8, bounced_after=2,
                             at=time.time())
        relays.beat(self.store, "relay-mx1", acknowledged={acc: ack}, counts={"held": 1500, "bounced": 3}, host="mx1",
                    pid=77, kind="postfix", relay="10.0.0.5:25", started_at=time.time() - 60, state="running",
                    queue_size=1600, note=self.note)

    def close(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(30)


def _status(db: Path, *args: str) -> str:
    done = subprocess.run([MAILCONSOLE, "--db", str(db), "status", *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_shows_the_relay_agents_figures_for_the_current_stop(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    stopped = accounts.stop(store, OPERATOR)
    agent = Agent(Store(str(db)))
    try:
        _check(db, store, stopped.generation, agent)
    finally:
        agent.close()
        agent.store.close()
    store.close()


def _check(db: Path, store: Store, generation: int, agent: Agent) -> None:
    agent.set(generation - 1, note="cannot act at the relay: postsuper: fatal: use of this command is reserved for the superuser")
    out = _status(db)
    assert "relays: 0/1 holding what they had queued" in out
    assert "NOT YET" in out and "reserved for the superuser" in out
    assert not status.overview(store).quiescent  # an agent that has not honoured the stop keeps it from quiescence
    agent.set(generation)
    out = _status(db)
    assert "relays: 1/1 holding what they had queued" in out
    row = next(line for line in out.splitlines() if "relay-mx1" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells == ["relay-mx1", "10.0.0.5:25", "1,600", "1,500", "10", "8", "2", "yes", "running"]
    data = json.loads(_status(db, "--json"))
    (relay,) = data["relays"]
    assert relay["honoured"] is True and relay["alive"] is True and relay["relay"] == "10.0.0.5:25"
    assert relay["stop"]["held"] == 1500 and relay["stop"]["in_delivery"] == 10
    assert relay["stop"]["delivered_after"] == 8 and relay["stop"]["bounced_after"] == 2
    assert relay["counts"]["bounced"] == 3
    assert status.overview(store).quiescent
