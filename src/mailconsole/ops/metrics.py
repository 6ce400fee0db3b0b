"""Prometheus metrics of an engine (`serve --metrics`) and a relay agent (`relay-agent --metrics`).

Collected at scrape time, by custom collectors of the official client: the engine
and the agent keep plain integers (engine/counters.py, Agent.counts) and nothing of
prometheus_client runs per message. What the store knows (every account's stop
state and queue by state) is one grouped read per scrape (store/gauges.py).

Labels stay bounded: `account` is an account name from the store (a handful per
store), `outcome`, `state` and `class` are fixed sets; nothing is labelled by
mailing, message or recipient.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..store import Store
from ..store.gauges import STATES, AccountGauge, account_gauges, mailing_accounts

if TYPE_CHECKING:
    from ..engine.counters import Timings
    from ..engine.runner import Engine
    from ..relay.agent import Agent
    from .notify import Notifier

log = logging.getLogger("mailconsole.metrics")

OUTCOMES = ("sent", "failed", "retry", "release")
REPLY_CLASSES = ("2xx", "4xx", "5xx", "none")


class MetricsAddressError(ValueError):
    """A --metrics value that is not HOST:PORT; the message is one line."""


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:9100 for IPv6); port 0 picks a free one."""
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise MetricsAddressError(f"--metrics must be HOST:PORT, e.g. 127.0.0.1:9464 (got {text!r})")
    return host, int(port)


@dataclass
class MetricsServer:
    """The HTTP endpoint; collectors are added once what they read exists."""

    registry: CollectorRegistry
    host: str
    port: int
    _server: object

    @classmethod
    def listen(cls, address: str) -> "MetricsServer":
        """Bind now (a taken port fails before anything starts); OSError if it cannot."""
        host, port = parse_address(address)
        registry = CollectorRegistry(auto_describe=False)
        server, _thread = start_http_server(port, addr=host, registry=registry)
        bound = server.server_address
        return cls(registry, host, int(bound[1]), server)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)

    def close(self) -> None:
        self._server.shutdown()  # type: ignore[attr-defined]
        self._server.server_close()  # type: ignore[attr-defined]


# -- shared by both collectors -----------------------------------------------------

class _Accounts:
    """Account names by id, from the last successful read (a name never changes)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.names: dict[int, str] = {}

    def read(self) -> list[AccountGauge] | None:
        try:
            rows = account_gauges(self.store)
        except Exception as exc:  # a scrape must answer even when the store does not
            log.warning("metrics: cannot read the store: %s", exc)
            return None
        self.names.update({r.id: r.name for r in rows})
        return rows

    def name(self, account_id: int | None) -> str:
        if account_id is None:
            return ""
        return self.names.get(account_id, f"#{account_id}")


def _histogram(name: str, doc: str, timings: "Timings") -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=timings.cumulative(), sum_value=timings.sum)


def _store_families(rows: list[AccountGauge] | None) -> Iterator[Metric]:
    up = GaugeMetricFamily("mailconsole_store_up", "1 if this scrape could read the store")
    up.add_metric([], 0 if rows is None else 1)
    yield up
    if rows is None:
        return
    depth = GaugeMetricFamily("mailconsole_queue_messages", "Messages of live mailings by state (whole store)",
                              labels=["account", "state"])
    stopped = GaugeMetricFamily("mailconsole_account_stopped", "1 while the account's emergency stop is on",
                                labels=["account"])
    generation = GaugeMetricFamily("mailconsole_stop_generation", "The account's current stop generation",
                                   labels=["account"])
    for r in rows:
        for state in STATES:
            depth.add_metric([r.name, state], r.queue[state])
        stopped.add_metric([r.name], 1 if r.stopped else 0)
        generation.add_metric([r.name], r.generation)
    yield from (depth, stopped, generation)


def _notify_family(notifier: "Notifier | None") -> Iterator[Metric]:
    if notifier is None:
        return
    sent = CounterMetricFamily("mailconsole_notifications", "Notifications by result", labels=["result"])
    sent.add_metric(["delivered"], notifier.delivered)
    sent.add_metric(["failed"], notifier.failed)
    sent.add_metric(["dropped"], notifier.dropped)
    yield sent


# -- the engine --------------------------------------------------------------------

class EngineCollector(Collector):
    def __init__(self, engine: "Engine", notifier: "Notifier | None" = None) -> None:
        self.engine = engine
        self.notifier = notifier
        self.accounts = _Accounts(engine.store)
        self._mailing_account: dict[int, int] = {}  # for outcomes the engine could not place

    def _resolve(self, mailing_ids: set[int]) -> None:
        missing = [m for m in mailing_ids if m not in self._mailing_account]
        if missing:
            try:
                self._mailing_account.update(mailing_accounts(self.engine.store, missing))
            except Exception as exc:  # counted under no account until the store answers
                log.warning("metrics: cannot read the mailings' accounts: %s", exc)

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        counters = engine.counters
        rows = self.accounts.read()
        yield from _store_families(rows)
        name = self.accounts.name

        messages = CounterMetricFamily("mailconsole_messages", "Outcomes recorded by this engine",
                                       labels=["account", "outcome"])
        by_account: dict[tuple[str, str], int] = {}
        unresolved = list(counters.unresolved.items())
        self._resolve({mid for (mid, _), _ in unresolved})
        placed = [((self._mailing_account.get(mid), kind), n) for (mid, kind), n in unresolved]
        for (acc, kind), n in list(counters.outcomes.items()) + placed:
            key = (name(acc), kind)
            by_account[key] = by_account.get(key, 0) + n
        for acc_name in {a for a, _ in by_account} | set(self.accounts.names.values()):
            for kind in OUTCOMES:
                messages.add_metric([acc_name, kind], by_account.get((acc_name, kind), 0))
        yield messages

        flight = GaugeMetricFamily("mailconsole_in_flight", "Messages this engine holds claimed, not yet recorded")
        flight.add_metric([], max(engine.held, 0))
        yield flight

        acked = GaugeMetricFamily("mailconsole_stop_generation_acknowledged",
                                  "The stop generation this engine has acknowledged", labels=["account"])
        for acc, gen in list(engine.acknowledged.items()):
            acked.add_metric([name(acc)], gen)
        yield acked

        yield _histogram("mailconsole_gate_check_seconds",
                         "Time of a final-dot gate check: the fence and a fresh read of the stop state",
                         counters.gate.check)
        yield _histogram("mailconsole_dot_fence_wait_seconds",
                         "Time a gate check waited for the dot fence (held by a stop)", counters.gate.fence)

        replies = CounterMetricFamily("mailconsole_smtp_replies", "SMTP replies ending a transaction, by class",
                                      labels=["class"])
        for cls in REPLY_CLASSES:
            replies.add_metric([cls], counters.replies.get(cls, 0))
        yield replies

        pauses = CounterMetricFamily("mailconsole_automatic_pauses", "Mailings paused by the engine itself (policy)",
                                     labels=["account"])
        paused = {name(acc): n for acc, n in list(counters.automatic_pauses.items())}
        for acc_name in set(paused) | set(self.accounts.names.values()):
            pauses.add_metric([acc_name], paused.get(acc_name, 0))
        yield pauses

        sent = CounterMetricFamily("mailconsole_engine_sent", "Messages this engine recorded as sent")
        sent.add_metric([], engine.sent_total)
        yield sent
        yield from _notify_family(self.notifier)


# -- the relay agent ---------------------------------------------------------------

class RelayAgentCollector(Collector):
    def __init__(self, agent: "Agent", notifier: "Notifier | None" = None) -> None:
        self.agent = agent
        self.notifier = notifier
        self.accounts = _Accounts(agent.store)

    def collect(self) -> Iterator[Metric]:
        agent = self.agent
        rows = self.accounts.read()
        yield from _store_families(rows)
        actions = CounterMetricFamily("mailconsole_relay_messages",
                                      "Messages this relay agent acted on or saw an outcome of", labels=["action"])
        for action, n in list(agent.counts.items()):
            actions.add_metric([action], n)
        yield actions
        size = GaugeMetricFamily("mailconsole_relay_queue_messages",
                                 "Our messages waiting at the relay (as of the last heartbeat)")
        if agent.queue_size is not None:
            size.add_metric([], agent.queue_size)
        yield size
        acked = GaugeMetricFamily("mailconsole_relay_stop_generation_acknowledged",
                                  "The stop generation this agent has honoured at the relay", labels=["account"])
        for acc, gen in agent.acknowledged_generations().items():
            acked.add_metric([self.accounts.name(acc)], gen)
        yield acked
        problem = GaugeMetricFamily("mailconsole_relay_problem", "1 while the agent has a problem (its note)")
        problem.add_metric([], 1 if agent.note else 0)
        yield problem
        yield from _notify_family(self.notifier)
