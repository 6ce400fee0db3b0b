"""`mailconsole status` shows each relay agent: held, in delivery at the stop, after it, honoured."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from mailconsole.store import Actor, Store, accounts, relays, status

from scenario import MAILCONSOLE

OPERATOR = Actor("operator", "192.0.2.1")


def _beat(store: Store, generation: int, *, note: str | None = None) -> None:
    acc = accounts.state(store).id
    ack = relays.StopAck(generation, held=1500, in_delivery=10, delivered_after=8, bounced_after=2, at=time.time())
    relays.beat(store, "relay-mx1", acknowledged={acc: ack}, counts={"held": 1500, "bounced": 3}, host="mx1", pid=77,
                kind="postfix", relay="10.0.0.5:25", started_at=time.time() - 60, state="running", queue_size=1600,
                note=note)


def _status(db: Path, *args: str) -> str:
    done = subprocess.run([MAILCONSOLE, "--db", str(db), "status", *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_shows_the_relay_agents_figures_for_the_current_stop(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    stopped = accounts.stop(store, OPERATOR)
    _beat(store, stopped.generation - 1, note="cannot act at the relay: postsuper: fatal: use of this command is reserved for the superuser")
    out = _status(db)
    assert "relays: 0/1 holding what they had queued" in out
    assert "NOT YET" in out and "reserved for the superuser" in out
    assert not status.overview(store).quiescent  # an agent that has not honoured the stop keeps it from quiescence
    _beat(store, stopped.generation)
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
    store.close()
