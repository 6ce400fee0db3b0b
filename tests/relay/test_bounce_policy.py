"""Bounces the relay reports feed the policy: the suppression list, and the automatic pause (real Postfix)."""

from __future__ import annotations

from mailconsole.store import audit, auto_pause, mailings, policy, suppressions
from postfix import NextHop
from scenario import OPERATOR, Scenario, add_mailing, wait


def test_hard_bounces_join_the_suppression_list_with_the_relays_reply(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    policy.set_values(s.store, OPERATOR, {"suppress_bounces": "on"})
    next_hop.refuse = {f"user{i}@example.net" for i in range(0, 40, 10)}
    mid = add_mailing(s.store, s.tmp, 40)
    s.agent()
    s.engine()
    wait(lambda: s.relay_states(mid) == {"delivered": 36, "bounced": 4}, 60, "every outcome")
    rows = {r.email: r for r in suppressions.list_suppressions(s.store)}
    assert set(rows) == next_hop.refuse
    assert all(r.created_by == "relay" and r.reason.startswith("bounced: ") and "550 5.1.1" in r.reason
               for r in rows.values())
    assert sum(e.details["count"] for e in audit.entries(s.store) if e.action == "suppress-bounces") == 4
    # The next mailing to the same list skips them at import.
    again = add_mailing(s.store, s.tmp, 40, name="news again")
    assert mailings.get_mailing(s.store, again).recipients == 36


def test_a_mailing_the_relay_bounces_a_quarter_of_is_paused_by_the_agent(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    n = 1500
    next_hop.refuse = {f"user{i}@example.net" for i in range(0, n, 4)}
    mid = add_mailing(s.store, s.tmp, n)
    agent = s.agent_in_process()
    s.engine("--rate", "150")  # slower than the relay: the bounces come back while it still sends
    wait(lambda: mailings.get_mailing(s.store, mid).status == "paused", 60, "the automatic pause")
    (entry,) = [e for e in audit.entries(s.store, limit=500) if e.action == "pause"]
    assert entry.actor == "engine" and entry.details["rule"] == "bounced" and entry.details["by"] == agent.agent.agent_id
    figures = entry.details["window"]
    assert figures["rate"] > 10 and figures["outcomes"] >= policy.Policy().min_outcomes
    assert "550 5.1.1 <address>: Recipient address rejected: User unknown" in figures["top_replies"][0]["reply"]
    m = mailings.get_mailing(s.store, mid)
    assert m.sent < n / 2 and m.queued > 0
    (trip,) = auto_pause.open_trips(s.store)
    assert trip.rule == "bounced" and trip.mailing_id == mid
