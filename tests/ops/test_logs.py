"""`serve --log-format json`: every line of the log is one JSON object with the promised keys."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess

from mailconsole.ops.logs import JsonFormatter
from mailconsole.store.mailings import get_mailing

from .conftest import MAILCONSOLE
from engine.conftest import add_mailing, wait

KEYS = {"time", "level", "logger", "message", "fields"}


def test_serve_logs_one_json_object_per_line(store, tmp_path):
    mid = add_mailing(store, tmp_path, 20)
    proc = subprocess.Popen([MAILCONSOLE, "--db", str(tmp_path / "store.db"), "serve", "--transport", "null:",
                             "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait(lambda: get_mailing(store, mid).sent == 20, 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = err.splitlines()
    records = [json.loads(line) for line in lines]  # each line parses on its own
    assert records and all(set(r) >= KEYS for r in records)
    assert all(r["time"].endswith("Z") and r["level"] in {"INFO", "WARNING", "ERROR", "DEBUG"} for r in records)
    messages = [r["message"] for r in records]
    assert any(m.endswith("shutting down") for m in messages), messages
    assert any(m == "signal SIGTERM: stopping gracefully" for m in messages)
    assert {r["logger"] for r in records} >= {"mailconsole.engine"}


def test_fields_exceptions_and_outside_text_stay_on_one_line():
    out = io.StringIO()
    logger = logging.getLogger("mailconsole.test-json")
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("reply %s", "550 no\r\n\x1b[2Jfake line \u202e", extra={"mailing": 7, "account": "default"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = out.getvalue().splitlines()
    assert "\x1b" not in first and "\u202e" not in first and "\r" not in first  # escaped by JSON, ASCII only
    record = json.loads(first)
    assert record["message"] == "reply 550 no\r\n\x1b[2Jfake line \u202e"
    assert record["fields"] == {"mailing": 7, "account": "default"} and record["level"] == "WARNING"
    assert "ValueError: boom" in json.loads(second)["exception"]
