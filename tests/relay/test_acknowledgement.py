"""The agent honours a stop only once nothing of the account is still in flight at a live engine.

An engine acknowledges a stop once no dot is passing its gate; the relay's 250
reply, and the engine's recording of it (with the queue id the agent holds by),
come later. Here the test plays that engine step by step against the real store
and the real Postfix: it claims, the stop commits, the engine acknowledges, the
relay accepts the message; the agent must wait for the result to be recorded,
hold the message, and only then acknowledge.
"""

from __future__ import annotations

import os
import smtplib
import socket
import time

from mailconsole.store import Store, accounts, engines, queue, relays
from postfix import NextHop
from scenario import OPERATOR, InProcessAgent, Scenario, add_mailing, wait

ENGINE = "engine-under-test"


def _beat(store: Store, acknowledged: dict[int, int], state: str = "running") -> None:
    engines.beat(store, ENGINE, host=socket.gethostname(), pid=os.getpid(), workers=1, transport="smtp://test",
                 started_at=store.now(), state=state, acknowledged=acknowledged)


def _hand_to_relay(s: Scenario, claimed: queue.Claimed) -> str:
    """What the engine's sender does: the message over SMTP to the relay; its reply to the dot."""
    host, port = s.relay.relay.split(":")
    with smtplib.SMTP(host, int(port), timeout=30) as smtp:
        smtp.ehlo("engine.test")
        smtp.mail("news@shop.example")
        smtp.rcpt(claimed.email)
        code, reply = smtp.data(f"From: news@shop.example\r\nTo: {claimed.email}\r\nSubject: late\r\n\r\nHi\r\n")
    assert code == 250, reply
    return f"{code} {reply.decode()}"


def _ack(agent: InProcessAgent, account_id: int, generation: int) -> relays.StopAck | None:
    ack = agent.agent.acknowledgements().get(account_id)
    return ack if ack is not None and ack.generation >= generation else None


def test_a_stop_is_acknowledged_only_after_what_engines_had_in_flight_is_recorded_and_held(
        scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    mid = add_mailing(s.store, s.tmp, 2, prefix="late")
    next_hop.defer = {"late0@example.net", "late1@example.net"}  # they stay in the relay's queue
    _beat(s.store, {})
    claimed = queue.claim(s.store, ENGINE, 10, 60.0)
    assert len(claimed) == 2
    agent = s.agent_in_process()
    stopped = accounts.stop(s.store, OPERATOR)
    _beat(s.store, {stopped.id: stopped.generation})  # no dot passing its gate: the engine acknowledges
    replies = [_hand_to_relay(s, c) for c in claimed]  # the relay took them (the dots were allowed before)
    time.sleep(1.5)  # dozens of the agent's rounds
    assert _ack(agent, stopped.id, stopped.generation) is None  # their queue ids are not known yet
    wait(lambda: "2 messages in flight at engines" in agent.note(), 10, "the note saying why")
    assert _ack(agent, stopped.id, stopped.generation) is None
    queue.record(s.store, ENGINE, [queue.Outcome(c.id, mid, "sent", relay_reply=r) for c, r in zip(claimed, replies)],
                 relay=s.relay.relay)
    wait(lambda: _ack(agent, stopped.id, stopped.generation), 30, "the acknowledgement")
    ack = _ack(agent, stopped.id, stopped.generation)
    assert ack is not None and ack.held == 2
    assert s.held_ids(mid) == s.relay.held() and len(s.held_ids(mid)) == 2
    assert "in flight" not in agent.note()
    for q in s.held_ids(mid):  # held by a rename in the queue: the relay's log says so, as postsuper's would
        wait(lambda: f"{q}: placed on hold" in s.relay.log_text(), 10, "the log line of the hold")


def test_claims_of_an_engine_that_is_gone_do_not_keep_the_stop_from_being_acknowledged(
        scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    add_mailing(s.store, s.tmp, 3, prefix="stale")
    _beat(s.store, {})
    assert len(queue.claim(s.store, ENGINE, 10, 600.0)) == 3
    _beat(s.store, {}, state="stopped")  # it died (or quit) with its claims: nobody will record them
    agent = s.agent_in_process()
    stopped = accounts.stop(s.store, OPERATOR)
    wait(lambda: _ack(agent, stopped.id, stopped.generation), 30, "the acknowledgement")


def test_an_agent_started_again_reports_the_same_counts_for_the_stop(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    next_hop.delay = 0.1  # 100 a second: the relay is mid-delivery when the stop comes
    add_mailing(s.store, s.tmp, 600)
    first = s.agent_in_process()
    s.engine()
    wait(lambda: s.relay.queue_size() >= 150, 60, "the relay's queue to fill")
    stopped = accounts.stop(s.store, OPERATOR)
    wait(lambda: _ack(first, stopped.id, stopped.generation), 30, "the first agent's acknowledgement")
    time.sleep(2)  # what was in delivery finishes and is recorded
    before = _ack(first, stopped.id, stopped.generation)
    assert before is not None and before.held > 0 and before.delivered_after > 0
    first.stop()
    second = s.agent_in_process()
    wait(lambda: _ack(second, stopped.id, stopped.generation), 30, "the second agent's acknowledgement")
    after = _ack(second, stopped.id, stopped.generation)
    assert after is not None
    assert (after.held, after.in_delivery, after.delivered_after, after.bounced_after) == (
        before.held, before.in_delivery, before.delivered_after, before.bounced_after)
