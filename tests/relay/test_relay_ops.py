"""The relay agent's metrics (scraped over HTTP from a running `relay-agent`) and its notifications."""

from __future__ import annotations

import json
import re
import stat
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mailconsole.store import accounts, relays
from postfix import NextHop
from scenario import OPERATOR, Process, Scenario, add_mailing, wait

# Written whole, then renamed: the test reads only complete events.
HOOK = 'f="$(dirname "$0")/event-$(date +%s%N)"; cat > "$f.part"; mv "$f.part" "$f.json"\n'


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _events(directory: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("event-*.json"))]


def test_agent_metrics_and_a_relay_that_cannot_hold(scenario: Scenario, next_hop: NextHop) -> None:
    s = scenario
    hook = s.tmp / "hook.sh"
    hook.write_text("#!/bin/sh\n" + HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    next_hop.delay = 0.2
    mid = add_mailing(s.store, s.tmp, 300)
    s.engine()
    agent = Process(s.tmp, "agent", "--db", str(s.db), "relay-agent", "--postfix", "--postfix-config",
                    str(s.relay.config), "--relay", s.relay.relay, "--metrics", "127.0.0.1:0",
                    "--notify-command", str(hook))
    s.processes.append(agent)
    wait(lambda: "metrics at " in agent.log(), 30, "the metrics URL")
    url = re.search(r"metrics at (\S+)", agent.log()).group(1)  # type: ignore[union-attr]
    wait(lambda: s.relay.queue_size() >= 50, 60, "the relay's queue to fill")

    stopped = accounts.stop(s.store, OPERATOR)
    wait(lambda: _scrape(url).get(("mailconsole_relay_stop_generation_acknowledged", (("account", "default"),)))
         == stopped.generation, 60, "the stop honoured at the relay")
    held = ("mailconsole_relay_messages_total", (("action", "held"),))
    wait(lambda: _scrape(url)[held] >= 1, 30, "holds counted")
    m = _scrape(url)
    assert m[("mailconsole_relay_messages_total", (("action", "delivered"),))] >= 0
    assert m[("mailconsole_relay_queue_messages", ())] >= 0
    assert m[("mailconsole_account_stopped", (("account", "default"),))] == 1
    assert m[("mailconsole_relay_problem", ())] == 0

    s.relay.stop()
    wait(lambda: any(e["event"] == "relay_cannot_hold" for e in _events(s.tmp)), 30, "the notification")
    event = next(e for e in _events(s.tmp) if e["event"] == "relay_cannot_hold")
    assert event["who"].startswith("relay agent ") and "down" in event["why"]
    assert event["counts"]["held"] >= 1 and event["from"]["program"] == "mailconsole relay-agent"
    assert _scrape(url)[("mailconsole_relay_problem", ())] == 1
    s.relay.start_again()
    wait(lambda: any(e["event"] == "relay_can_hold" for e in _events(s.tmp)), 60, "the all-clear")


