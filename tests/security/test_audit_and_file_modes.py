"""Every operator action is in the audit log with its actor and SSH client; store files are 0600.

Each action runs as an operator runs it: the installed `mailconsole` command in
its own process, with SSH_CONNECTION set as sshd sets it, and under umask 000 so
that the file modes come from the store itself, not from a careful shell.
"""

from __future__ import annotations

import getpass
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailconsole.store import Store, audit

from .conftest import SENDER

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
SSH_CONNECTION = "203.0.113.9 52814 192.0.2.10 22"

# Every action the store writes to the audit log (audit.record calls), each with the command that causes it.
ACTIONS = {
    "create": ["create", "--name", "N", "--from", SENDER, "--subject", "Hi {{ name }}", "--body-file", "{body}",
               "--recipients", "{csv}"],
    "pause": ["pause", "1"],
    "unpause": ["unpause", "1"],
    "template": ["template", "set", "1", "--subject", "Hello {{ name }}"],
    "stop": ["stop", "--reason", "wrong list"],
    "resume": ["resume", "--yes", "--max-age-days", "0"],  # suspends what is queued: something to requeue
    "requeue": ["requeue", "1"],
    "reschedule": ["reschedule", "2", "--at", "2099-01-01T00:00:00+00:00"],
    "delete": ["delete", "1", "--yes"],
}


def run(db: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILCONSOLE, "--db", str(db), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})}, preexec_fn=lambda: os.umask(0),
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    body = tmp_path / "body.txt"
    body.write_text("Hello {{ name }}\n")
    csv = tmp_path / "r.csv"
    csv.write_text("email,name\n" + "".join(f"u{i}@example.net,U{i}\n" for i in range(5)))
    return {"body": str(body), "csv": str(csv)}


def test_every_operator_action_is_audited_with_actor_and_ssh_client(tmp_path: Path, files: dict[str, str]) -> None:
    db = tmp_path / "store.db"
    assert run(db, "init").returncode == 0
    env = {"SSH_CONNECTION": SSH_CONNECTION}
    # Two mailings: the first for the actions on a sending mailing, the second planned (to reschedule).
    for extra in ([], ["--at", "2098-01-01T00:00:00+00:00"]):
        r = run(db, *[a.format(**files) for a in ACTIONS["create"]], *extra, env=env)
        assert r.returncode == 0, r.stderr
    for action, args in ACTIONS.items():
        if action != "create":
            r = run(db, *args, env=env)
            assert r.returncode == 0, (action, r.stderr)
    store = Store(str(db), create=False)
    try:
        entries = audit.entries(store, limit=100)
    finally:
        store.close()
    assert {e.action for e in entries} == set(ACTIONS)
    assert {(e.actor, e.ssh_client) for e in entries} == {(getpass.getuser(), "203.0.113.9")}
    shown = run(db, "audit").stdout
    assert shown.count("203.0.113.9") == len(entries)


def test_actions_without_ssh_have_no_client(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_CONNECTION", "SSH_CLIENT")}
    run(db, "init")
    subprocess.run([MAILCONSOLE, "--db", str(db), "stop"], capture_output=True, text=True, timeout=60, env=env, check=True)
    store = Store(str(db), create=False)
    try:
        [entry] = audit.entries(store)
    finally:
        store.close()
    assert (entry.action, entry.actor, entry.ssh_client) == ("stop", getpass.getuser(), None)


def test_store_files_are_created_0600_whatever_the_umask(tmp_path: Path, files: dict[str, str]) -> None:
    db = tmp_path / "store.db"
    assert run(db, "init").returncode == 0
    # A writer that keeps the store open while the modes are read: -wal and -shm exist only then.
    code = (
        "import sys, time; from mailconsole.store import Store, accounts, Actor\n"
        "s = Store(sys.argv[1]); accounts.stop(s, Actor('x')); print('ready', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.umask(0))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("store.db*")}
    finally:
        holder.kill()
        holder.wait()
    # Every file beside the store (lock files too) is the store's: all 0600.
    assert {"store.db", "store.db-wal", "store.db-shm"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}
