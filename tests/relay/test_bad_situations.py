"""When the agent cannot do its job, it says so, and records nothing the relay did not do."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from lockholder import lock_held, release  # type: ignore[import-not-found]
from mailconsole.store import accounts, relays
from postfix import CONCURRENCY, NextHop, PrivatePostfix
from scenario import MAILCONSOLE, OPERATOR, Scenario, add_mailing, wait


def _fill(s: Scenario, hop: NextHop, n: int = 400, at_relay: int = 100, delay: float = 0.1) -> int:
    hop.delay = delay
    mid = add_mailing(s.store, s.tmp, n)
    s.engine()
    wait(lambda: s.relay.queue_size() >= at_relay, 60, "the relay's queue to fill")
    return mid


AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_an_agent_that_may_not_run_postsuper_says_so_and_marks_nothing_held(postfix: PrivatePostfix, next_hop: NextHop) -> None:
    # Not root: the store is made writable for `nobody` (in a directory it can reach),
    # the relay's tools refuse it.
    probe = subprocess.run([*AS_NOBODY, MAILCONSOLE, "--version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:  # e.g. a checkout inside a directory of mode 0700
        pytest.skip(f"user nobody cannot run {MAILCONSOLE}: {(probe.stderr or probe.stdout).strip()[:200]}")
    base = Path(tempfile.mkdtemp(prefix="mc-relay-"))
    os.chmod(base, 0o777)
    s = Scenario(base, postfix)
    try:
        _as_nobody(s, next_hop)
    finally:
        s.close()
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(s: Scenario, next_hop: NextHop) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{s.db}{suffix}"):
            os.chmod(f"{s.db}{suffix}", 0o666)
    log = (s.tmp / "agent-nobody.log").open("w")
    agent = subprocess.Popen(
        [*AS_NOBODY, MAILCONSOLE, "--db", str(s.db),
         "relay-agent", "--postfix", "--postfix-config", str(s.relay.config), "--relay", s.relay.relay],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        wait(lambda: any(r.pid == agent.pid and r.alive for r in relays.list_relays(s.store)) or agent.poll() is not None,
             30, "its heartbeat")
        assert agent.poll() is None, f"the agent exited: {(s.tmp / 'agent-nobody.log').read_text()[-2000:]}"
        mid = _fill(s, next_hop)
        stopped = accounts.stop(s.store, OPERATOR)
        wait(lambda: "reserved for the superuser" in (_row(s, agent.pid).note or ""), 60, "the note")
        time.sleep(0.5)  # more of its rounds: still nothing held
        assert not s.held_ids(mid) and not s.relay.held()
        assert not _row(s, agent.pid).honoured(stopped.id, stopped.generation)
    finally:
        agent.terminate()
        agent.wait(15)
        log.close()


def _row(s: Scenario, pid: int) -> relays.RelayInfo:
    return next(r for r in relays.list_relays(s.store) if r.pid == pid)


def test_a_queue_id_no_longer_at_the_relay_is_not_marked_held_and_later_shown_lost(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    mid = _fill(s, next_hop, delay=0.2)
    agent = s.agent_in_process(gone_after=1.0)
    # Someone removes some of ours behind the agent's back (no outcome is logged for them).
    with s.store.read() as conn:
        from sqlalchemy import select

        from mailconsole.store.schema import messages

        # The last five sent: still waiting out the next hop's delay at the relay.
        victims = list(conn.execute(select(messages.c.relay_queue_id).where(
            messages.c.mailing_id == mid, messages.c.relay_state == "queued").order_by(messages.c.id)).scalars())[-5:]
    s.relay.command("postsuper", "-d", "-", stdin="\n".join(victims) + "\n")
    accounts.stop(s.store, OPERATOR)
    wait(lambda: s.ids_in_state("lost", mid) == set(victims), 60, "the lost ones")
    assert not (s.held_ids(mid) & set(victims))
    assert s.held_ids(mid) <= s.relay.held()
    assert "5 queue ids no longer at the relay" in agent.note()


def test_a_relay_that_is_down_is_shown_its_queue_files_are_held_and_stay_held_once_it_is_back(
        scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    mid = _fill(s, next_hop, delay=0.2)
    agent = s.agent_in_process()
    s.relay.stop()
    wait(lambda: "relay is down" in agent.note(), 30, "the relay shown down")
    stopped = accounts.stop(s.store, OPERATOR)
    # The hold is a rename in the relay's queue (what postsuper -h does): it applies to
    # the queue files with the relay down too, and holds once it is back.
    wait(lambda: stopped.id in agent.agent.acknowledgements(), 60, "the hold with the relay down")
    hold_dir = {p.name for p in (s.relay.base / "queue" / "hold").iterdir()}
    assert s.held_ids(mid) and s.held_ids(mid) <= hold_dir  # nothing claimed held that is not
    before = len(next_hop.recipients())
    s.relay.start_again()
    # Still 'queued' here only what is no longer in the relay's queue (delivered while it
    # was going down, its log line lost with it): awaited, then marked lost.
    at_relay = {m["queue_id"]: m["queue_name"] for m in s.relay.queue()}
    assert all(at_relay.get(q) in (None, "hold") for q in s.ids_in_state("queued", mid))
    wait(lambda: "relay restarted" in agent.note() and "is down" not in agent.note(), 60, "the relay shown back")
    # Back up, the relay may start a round or two of deliveries before the agent's hold
    # lands (it retries as soon as the master runs again); then it holds: nothing of
    # ours waits outside hold/, nothing is being delivered.
    wait(lambda: all(m["queue_name"] == "hold" for m in s.relay.queue()) and not s.relay.delivering(), 60,
         "everything of ours held at the relay, no delivery under way")
    assert len(next_hop.recipients()) - before <= 3 * CONCURRENCY
    settled = len(next_hop.recipients())
    time.sleep(1.5)  # a held message is not delivered, however long one waits
    assert len(next_hop.recipients()) == settled


def test_a_rotated_log_is_followed_and_outcomes_keep_being_recorded(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    agent = s.agent_in_process()
    first = add_mailing(s.store, s.tmp, 20, prefix="before")
    s.engine()
    wait(lambda: s.relay_states(first) == {"delivered": 20}, 60, "the first outcomes")
    s.relay.command("postfix", "logrotate")
    second = add_mailing(s.store, s.tmp, 20, prefix="after")
    wait(lambda: s.relay_states(second) == {"delivered": 20}, 60, "outcomes from the new log")
    assert "rotated" in agent.note()
    assert list(s.relay.maillog.parent.glob("maillog.*"))  # it really was rotated


def test_a_store_that_takes_no_writes_keeps_what_the_relay_did_until_it_can(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    mid = _fill(s, next_hop, delay=0.2)
    agent = s.agent_in_process()
    asked: list[str] = []  # every queue id the agent asked the relay to hold
    hold = agent.queue.hold
    agent.queue.hold = lambda ids: (asked.extend(ids), hold(ids))[1]  # type: ignore[method-assign]
    with lock_held(s.db) as holder:
        # The stop cannot commit: it posts its intent, which engines and the agent
        # honour at once. The relay holds; the store cannot be told yet.
        stopping = threading.Thread(target=accounts.stop, args=(s.store, OPERATOR))
        stopping.start()
        wait(lambda: "changes at the relay kept to record" in agent.note(), 60, "the note")
        assert s.relay.held()  # held at the relay...
        assert not s.held_ids(mid)  # ...and not yet claimed so here
        release(holder)
        stopping.join(30)
    wait(lambda: "cannot write" not in agent.note(), 60, "the note cleared")
    wait(lambda: s.held_ids(mid) and s.held_ids(mid) <= s.relay.held(), 60, "the holds recorded")
    # Each once: while the store took no writes, what was held waited to be recorded,
    # not to be held again every round.
    assert len(asked) == len(set(asked)) and s.held_ids(mid) <= set(asked)
