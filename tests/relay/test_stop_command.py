"""`mailconsole stop` waits (bounded) for the relay agents and says what each held, or why not."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from mailconsole.store import Store, accounts, relays
from mailconsole.store.schema import messages

from scenario import MAILCONSOLE, OPERATOR, Scenario, add_mailing, wait
from postfix import CONCURRENCY, NextHop

NOTE = "cannot act at the relay: postsuper: fatal: use of this command is reserved for the superuser"


def _beat(store: Store, agent_id: str, acknowledged: dict[int, relays.StopAck], note: str | None = None) -> None:
    relays.beat(store, agent_id, acknowledged=acknowledged, counts={}, host="mx1", pid=77, kind="postfix",
                relay="10.0.0.5:25", started_at=time.time() - 60, state="running", queue_size=10, note=note)


def _stop(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILCONSOLE, "--db", str(db), "stop", *args], capture_output=True, text=True, timeout=60,
                          env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"})


def test_stop_says_which_relay_did_not_acknowledge_in_time_and_why(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    accounts.state(store)
    _beat(store, "relay-mx1", {}, note=NOTE)
    started = time.monotonic()
    done = _stop(db, "--relay-wait", "0.5")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 0.5  # it waited
    assert accounts.state(store).stopped
    assert "STOPPED" in done.stdout
    line = next(line for line in done.stdout.splitlines() if "10.0.0.5:25" in line)
    assert "did not acknowledge within 0.5 s" in line and "reserved for the superuser" in line
    assert "may keep going out" in line
    store.close()


def test_stop_reports_what_a_relay_agent_held_once_it_acknowledges(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    acc = accounts.state(store).id
    _beat(store, "relay-mx1", {})

    def agent() -> None:  # acknowledges the new stop a moment after its commit, as the agent would
        own = Store(str(db))
        wait(lambda: accounts.state(own).stopped, 30, "the stop")
        time.sleep(0.3)
        _beat(own, "relay-mx1", {acc: relays.StopAck(accounts.state(own).generation, 1234, 7, 0, 0, time.time())})
        own.close()

    thread = threading.Thread(target=agent)
    thread.start()
    # Longer than the default 2 s: the agent acknowledges 0.3 s after it sees the stop, later
    # on a loaded machine; `stop` returns at the acknowledgement.
    done = _stop(db, "--relay-wait", "30")
    thread.join()
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "10.0.0.5:25" in line)
    assert "held 1,234, in delivery at the stop 7" in line
    store.close()


def test_relay_wait_zero_does_not_wait_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(str(db))
    accounts.state(store)
    _beat(store, "relay-mx1", {}, note=None)
    done = _stop(db, "--relay-wait", "0")
    assert done.returncode == 0, done.stderr
    assert "did not acknowledge within 0 s: no note" in done.stdout
    accounts.resume(store, OPERATOR)
    bad = _stop(db, "--relay-wait", "-1")
    assert bad.returncode == 2
    assert "--relay-wait" in bad.stderr and len(bad.stderr.strip().splitlines()[-1]) < 200
    assert not accounts.state(store).stopped  # nothing half-applied
    store.close()


def test_stop_with_a_real_agent_prints_what_it_held(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    next_hop.delay = 0.05
    add_mailing(s.store, s.tmp, 800)
    s.agent()
    s.engine()
    wait(lambda: s.relay.queue_size() >= 150, 60, "the relay's queue to fill")
    done = _stop(s.db, "--relay-wait", "30")  # returns at the acknowledgement; 30 s: room for a loaded machine
    assert done.returncode == 0, done.stderr
    ack = s.agent_row().acknowledged[accounts.state(s.store).id]
    line = next(line for line in done.stdout.splitlines() if s.relay.relay in line)
    assert f"held {ack.held:,}, in delivery at the stop" in line and ack.held > 0


def test_in_delivery_at_the_stop_is_exact_when_stop_returns(scenario: Scenario, next_hop: NextHop) -> None:
    """What the relay was delivering as the hold came is counted at the acknowledgement, not
    only as those deliveries finish: here each takes a second, so none has when `stop` prints."""
    s = scenario
    next_hop.delay = 1.0
    mid = add_mailing(s.store, s.tmp, 300)
    s.agent()
    s.engine()
    wait(lambda: s.relay.queue_size() >= 100 and len(s.relay.delivering()) >= 5, 60, "the relay busy delivering")
    done = _stop(s.db, "--relay-wait", "30")  # returns at the acknowledgement; 30 s: room for a loaded machine
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if s.relay.relay in line)
    printed = int(re.search(r"in delivery at the stop ([\d,]+)", line).group(1).replace(",", ""))  # type: ignore[union-attr]
    # Then those deliveries finish and the relay's log says so.
    wait(lambda: not s.relay.delivering(), 60, "the relay's deliveries under way to finish")
    wait(lambda: _delivered(s.store, mid) == len(next_hop.recipients()), 60, "every delivery recorded")
    assert 0 < printed <= CONCURRENCY
    assert printed == _in_delivery(s.store, mid), line  # exact: as many as the relay's log shows in the end
    ack = s.agent_row().acknowledged[accounts.state(s.store).id]
    assert ack.in_delivery == printed


def _delivered(store: Store, mailing_id: int) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).where(messages.c.mailing_id == mailing_id,
                                                       messages.c.relay_state == relays.DELIVERED)).scalar_one()


def _in_delivery(store: Store, mailing_id: int) -> int:
    """Held messages of the mailing the relay still attempted (its log's word, recorded after the hold)."""
    with store.read() as conn:
        return conn.execute(select(func.count()).where(
            messages.c.mailing_id == mailing_id,
            messages.c.relay_note.like(relays.IN_DELIVERY_NOTE + "%"),
            messages.c.relay_state.in_((relays.DELIVERED, relays.BOUNCED)))).scalar_one()
