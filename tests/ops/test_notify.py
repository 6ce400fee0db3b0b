"""The notification hook: a real hook process, a real local HTTP receiver, timeouts and failures."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mailconsole.ops.notify import Event, Notifier, parse_url
from mailconsole.store import accounts
from mailconsole.store.engines import list_engines

from .conftest import MAILCONSOLE, OPERATOR_ACTOR, RECORDING_HOOK, hook_calls, hook_script
from engine.conftest import add_mailing, free_port, wait


def run(db: Path, *args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([MAILCONSOLE, "--db", str(db), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, **kw)  # type: ignore[call-overload]


@pytest.fixture
def db(store, tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def test_stop_runs_the_hook_with_who_why_where_and_counts(store, db, tmp_path):
    add_mailing(store, tmp_path, 5)
    hook = hook_script(tmp_path / "hook.sh", RECORDING_HOOK)
    r = run(db, "stop", "--reason", "wrong list", "--notify-command", str(hook),
            env={"SSH_CONNECTION": "198.51.100.7 50022 192.0.2.10 22"})
    assert r.returncode == 0, r.stderr
    assert "STOPPED" in r.stdout and r.stderr == ""
    [event] = hook_calls(tmp_path)
    assert event["event"] == "stop" and event["why"] == "wrong list" and event["account"] == "default"
    assert event["who"] and event["from"]["ssh_client"] == "198.51.100.7"
    assert event["from"]["host"] and event["from"]["pid"] > 0 and event["from"]["program"] == "mailconsole stop"
    assert event["counts"]["queued"] == 5 and event["counts"]["generation"] == accounts.state(store).generation
    assert event["time"].endswith("Z")
    env = next(tmp_path.glob("hook-*.env")).read_text()
    assert "MAILCONSOLE_EVENT=stop" in env and "MAILCONSOLE_WHY=wrong list" in env


def test_resume_posts_json_to_the_url_with_its_credentials_never_shown(store, db, tmp_path, receiver):
    accounts.stop(store, OPERATOR_ACTOR, "default", "test")
    secret_url = f"http://hookuser:pa55word@127.0.0.1:{receiver.port}/hook?token=t0ken-abc"
    r = run(db, "resume", "--yes", env={"MAILCONSOLE_NOTIFY_URL": secret_url})
    assert r.returncode == 0, r.stderr
    [(path, headers, body)] = receiver.requests
    event = json.loads(body)
    assert event["event"] == "resume" and event["account"] == "default" and "to_send" in event["counts"]
    assert path == "/hook?token=t0ken-abc" and headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"hookuser:pa55word").decode()
    for secret in ("pa55word", "t0ken-abc"):
        assert secret not in r.stdout + r.stderr


def test_a_failing_url_is_retried_then_reported_without_its_secret(store, db, tmp_path, receiver):
    receiver.status = [500]
    url = f"http://u:s3cr3t-pw@127.0.0.1:{receiver.port}/hook?key=k3y-value"
    r = run(db, "stop", "--notify-url", url, "--notify-timeout", "2")
    assert r.returncode == 0  # the stop itself stands
    assert "STOPPED" in r.stdout
    assert len(receiver.requests) == 3  # tried three times
    assert "notification stop failed" in r.stderr and "answered 500" in r.stderr and "(tried 3x)" in r.stderr
    assert f"127.0.0.1:{receiver.port}/hook?key=***" in r.stderr
    for secret in ("s3cr3t-pw", "k3y-value"):
        assert secret not in r.stdout + r.stderr
    assert accounts.state(store).stopped


def test_a_hanging_hook_is_killed_after_its_timeout_and_came_after_the_stop(store, db, tmp_path):
    # The hook records what the store says when it runs, and its process group, then hangs.
    hook = hook_script(tmp_path / "hang.sh", f'''echo $$ >> "{tmp_path}/pids"
{MAILCONSOLE} --db "{db}" status --json > "{tmp_path}/status-$$.json"
sleep 300 & wait
''')
    r = run(db, "stop", "--notify-command", str(hook), "--notify-timeout", "3")
    assert r.returncode == 0 and "STOPPED" in r.stdout
    assert "did not finish within 3 s (killed)" in r.stderr and "(tried 3x)" in r.stderr
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()]
    assert len(pids) == 3
    # Every run of the hook already saw the stop committed: the notification followed it.
    statuses = [json.loads(p.read_text()) for p in tmp_path.glob("status-*.json") if p.stat().st_size]
    assert statuses and all(s["stopped"] is True for s in statuses)
    for pid in pids:  # the hook and its `sleep` were ended with its process group
        assert not _running_in_group(pid)


def _running_in_group(pgid: int) -> list[int]:
    """Processes of the group still running (a killed orphan may linger as a zombie: that is ended)."""
    running = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                running.append(int(entry.name))
    return running


def test_send_returns_while_the_hook_is_still_running(tmp_path):
    """Queued, not delivered inline: a stop that notifies does not wait for its hook."""
    release = tmp_path / "release"
    hook = hook_script(tmp_path / "slow.sh", f'''cat > "{tmp_path}/hook-$$.json"
while [ ! -e "{release}" ]; do sleep 0.05; done
''')
    notifier = Notifier(str(hook), timeout=60, attempts=1)
    notifier.send(Event("stop", "operator"))
    wait(lambda: list(tmp_path.glob("hook-*.json")), 20)
    notifier.send(Event("resume", "operator"))  # returns although the first hook is still running
    assert notifier.delivered == 0
    release.touch()
    assert notifier.close(20)
    assert notifier.delivered == 2 and notifier.problem is None
    assert [e["event"] for e in hook_calls(tmp_path)] == ["stop", "resume"]


def test_serve_tells_of_an_engine_that_cannot_send_and_shows_a_failing_hook(store, db, tmp_path):
    add_mailing(store, tmp_path, 3)
    # Records the event, then fails: the failure must show in the engine's heartbeat note.
    hook = hook_script(tmp_path / "fail.sh", RECORDING_HOOK + 'echo "paging service down" >&2; exit 3\n')
    closed = free_port()
    proc = subprocess.Popen([MAILCONSOLE, "--db", str(db), "serve", "--quiet", "--transport",
                             f"smtp://127.0.0.1:{closed}?starttls=off", "--notify-command", str(hook),
                             "--notify-timeout", "5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait(lambda: any("notification engine_cannot_send failed" in (e.note or "") for e in list_engines(store)), 120)
        note = next(e.note for e in list_engines(store) if e.note and "notification" in e.note)
        assert "exited with 3: paging service down" in note
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    calls = hook_calls(tmp_path)
    assert calls and calls[0]["event"] == "engine_cannot_send"
    assert calls[0]["who"].startswith("engine ") and "127.0.0.1" in calls[0]["why"]
    assert calls[0]["counts"]["in_flight"] >= 1  # the messages it holds, kept for later
    assert "notification engine_cannot_send failed" in err


def test_a_bad_notify_setting_is_a_usage_error_but_never_costs_the_stop(store, db):
    r = run(db, "stop", "--notify-url", "ftp://example.org/x")
    assert r.returncode == 2 and "--notify-url must be http" in r.stderr
    assert "STOPPED" in r.stdout and accounts.state(store).stopped
    accounts.resume(store, OPERATOR_ACTOR, "default")
    r = run(db, "resume", "--yes", "--notify-command", "'unclosed")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = run(db, "serve", "--transport", "null:", "--notify-timeout", "soon", "--notify-command", "true")
    assert r.returncode == 2 and "--notify-timeout must be a number" in r.stderr


def test_the_url_as_shown_keeps_no_secret():
    t = parse_url("https://ops:hunter22@hooks.example:8443/p/q?token=abcdef&channel=ops-alerts")
    assert t.shown == "https://hooks.example:8443/p/q?token=***&channel=***"
    assert t.url == "https://hooks.example:8443/p/q?token=abcdef&channel=ops-alerts"
    assert t.scrub("POST https://ops:hunter22@hooks.example:8443/p/q?token=abcdef&channel=ops-alerts: hunter22 abcdef") \
        .count("***") == 3
