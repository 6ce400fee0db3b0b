"""`serve --metrics`: a real engine process, scraped over HTTP, parsed by prometheus_client's parser."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from mailconsole.store import accounts
from mailconsole.store.mailings import get_mailing

from .conftest import MAILCONSOLE, OPERATOR_ACTOR, metrics_url, scrape, value
from engine.conftest import add_mailing, serve, wait

pytestmark = pytest.mark.slow

# Every label the exposition may carry: none names a message, a recipient or a mailing.
BOUNDED_LABELS = {"account", "outcome", "state", "class", "le", "result", "action"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text("[engine]\nworkers = 2\nidle_claim_interval = 0.02\nretry_base = 0.05\nmax_attempts = 1\n"
                    "shutdown_grace = 2.0\nheartbeat_interval = 0.2\n", encoding="utf-8")
    return path


def test_a_scrape_shows_outcomes_replies_queue_stop_and_the_gate(store, tmp_path, smtpd_factory, config):
    ctl, handler = smtpd_factory()
    n, rejected = 40, {f"user{i}@example.net" for i in (3, 11, 27)}
    handler.reject_rcpt |= rejected
    mid = add_mailing(store, tmp_path, n)
    proc = serve(tmp_path / "store.db", ctl.port, config, "--metrics", "127.0.0.1:0")
    try:
        url = metrics_url(proc)
        wait(lambda: get_mailing(store, mid).sent + get_mailing(store, mid).failed == n, 180)
        wait(lambda: value(scrape(url), "mailconsole_messages_total", account="default", outcome="sent") == n - 3, 60)
        s = scrape(url)
        assert value(s, "mailconsole_messages_total", account="default", outcome="failed") == 3
        assert value(s, "mailconsole_smtp_replies_total", **{"class": "2xx"}) == n - 3
        assert value(s, "mailconsole_smtp_replies_total", **{"class": "5xx"}) == 3
        assert value(s, "mailconsole_queue_messages", account="default", state="sent") == n - 3
        assert value(s, "mailconsole_queue_messages", account="default", state="failed") == 3
        assert value(s, "mailconsole_queue_messages", account="default", state="queued") == 0
        assert value(s, "mailconsole_in_flight") == 0
        assert value(s, "mailconsole_account_stopped", account="default") == 0
        assert value(s, "mailconsole_gate_check_seconds_count") == n - 3  # one gate check per message sent
        assert value(s, "mailconsole_gate_check_seconds_bucket", le="+Inf") == n - 3
        assert value(s, "mailconsole_dot_fence_wait_seconds_count") == n - 3
        assert value(s, "mailconsole_automatic_pauses_total", account="default") == 0
        assert value(s, "mailconsole_store_up") == 1
        for samples in s.values():
            for labels, _ in samples:
                assert set(labels) <= BOUNDED_LABELS, labels

        stopped = accounts.stop(store, OPERATOR_ACTOR, "default", "metrics test")
        wait(lambda: value(scrape(url), "mailconsole_stop_generation_acknowledged", account="default")
             == stopped.generation, 60)
        s = scrape(url)
        assert value(s, "mailconsole_account_stopped", account="default") == 1
        assert value(s, "mailconsole_stop_generation", account="default") == stopped.generation
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_null_transport_counts_without_smtp_replies(store, tmp_path):
    mid = add_mailing(store, tmp_path, 500)
    proc = subprocess.Popen([MAILCONSOLE, "--db", str(tmp_path / "store.db"), "serve", "--quiet", "--transport", "null:",
                             "--metrics", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = metrics_url(proc)
        wait(lambda: get_mailing(store, mid).sent == 500, 180)
        wait(lambda: value(scrape(url), "mailconsole_messages_total", account="default", outcome="sent") == 500, 60)
        s = scrape(url)
        assert value(s, "mailconsole_smtp_replies_total", **{"class": "2xx"}) == 0
        assert value(s, "mailconsole_gate_check_seconds_count") > 0  # one check covers up to 16 null: messages
        assert value(s, "mailconsole_engine_sent_total") == 500
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


@pytest.mark.parametrize("address", ["9464", "localhost:", "localhost:99999", ":80"])
def test_a_bad_metrics_address_is_a_usage_error(store, tmp_path, address):
    r = subprocess.run([MAILCONSOLE, "--db", str(tmp_path / "store.db"), "serve", "--transport", "null:",
                        "--metrics", address], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "--metrics must be HOST:PORT" in r.stderr


def test_a_taken_port_is_refused_before_the_engine_starts(store, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([MAILCONSOLE, "--db", str(tmp_path / "store.db"), "serve", "--transport", "null:",
                            "--metrics", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot serve metrics on" in r.stderr, r.stderr
    assert "engine" not in r.stdout  # nothing started


def test_an_automatic_pause_is_counted_and_announced(store, tmp_path):
    """The place a policy reports its pauses: Engine.automatic_pause (counter and notification event)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from mailconsole.engine import Engine, EngineConfig
    from mailconsole.ops.metrics import EngineCollector

    mid = add_mailing(store, tmp_path, 1)
    engine = Engine(store, EngineConfig(transport="null:"))
    told: list[tuple[str, dict]] = []
    engine.on_event = lambda event, details: told.append((event, details))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    account_id = accounts.state(store, "default").id
    engine.automatic_pause(account_id, {"mailing": mid, "why": "5xx over threshold", "account": "default"})
    engine.automatic_pause(account_id, {"mailing": mid, "why": "again", "account": "default"})
    text = generate_latest(registry).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("mailconsole_automatic_pauses_total", (("account", "default"),))] == 2
    assert [e for e, _ in told] == ["automatic_pause", "automatic_pause"]
    assert told[0][1]["mailing"] == mid and told[0][1]["account_id"] == account_id


def test_outcomes_of_a_mailing_the_gate_no_longer_lists_keep_their_account(store, tmp_path):
    """A mailing that finished between its last dot and the count is placed by the store."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from mailconsole.engine import Engine, EngineConfig
    from mailconsole.ops.metrics import EngineCollector
    from mailconsole.store.queue import Control, Outcome

    mid = add_mailing(store, tmp_path, 1)
    engine = Engine(store, EngineConfig(transport="null:"))
    engine.counters.count([Outcome(1, mid, "sent", 1), Outcome(2, mid, "sent", 1)], Control({}, frozenset(), {}))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode()) for s in f.samples}
    assert samples[("mailconsole_messages_total", (("account", "default"), ("outcome", "sent")))] == 2
    assert not any(labels and dict(labels).get("account") == "" for _, labels in samples)
