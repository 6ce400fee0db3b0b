"""`--read-only` cannot change anything: not from the CLI, not from any key of the console.

The store is opened read-only at the SQLite level (mode=ro), and every action
refuses before it tries; these tests check the outcome an operator cares
about: the store's content is the same afterwards, row for row (an SQL dump
compared before and after), and every refusal says so.

By design the stop key is refused too: a read-only console is for watching
(a second operator, a wall screen); whoever may stop mailings opens the console
without --read-only or runs `mailconsole stop`.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.builder import FIXED, OPERATOR, build
from console.pilot import drive, press, settle
from mailconsole.console.analytics_tab import MailingsTable
from mailconsole.console.app import MailConsole
from mailconsole.console.keys import ACTIONS, STOP_KEY, STOP_KEY_BARE
from mailconsole.store import Store, accounts

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
OLD_LIST, SALE, ODD = 2, 3, 6  # mailing ids in the fixed store (see console.builder)


def dump(db: Path) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture(params=[False, True], ids=["running", "stopped"])
def db(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The console tests' fixed store (every status, suspended and planned mailings), running or stopped."""
    path = tmp_path / "store.db"
    build(path, stopped=request.param).close()
    return path


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILCONSOLE, "--db", str(db), "--read-only", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("db", [True], ids=["stopped"], indirect=True)  # stopped: resume has work to refuse
def test_cli_read_only_refuses_every_change(db: Path, tmp_path: Path) -> None:
    body = tmp_path / "b.txt"
    body.write_text("x\n")
    csv = tmp_path / "r.csv"
    csv.write_text("email\nz@example.net\n")
    before = dump(db)
    changes = [
        ["stop"], ["resume", "--yes"], ["pause", "3"], ["unpause", "3"], ["requeue", "2"],
        ["reschedule", "4", "--at", "2099-01-01T00:00:00"], ["delete", "3", "--yes"],
        ["template", "set", "3", "--subject", "changed"],
        ["create", "--name", "n", "--from", "a@example.net", "--subject", "s", "--body-file", str(body),
         "--recipients", str(csv)],
    ]
    for args in changes:
        r = cli(db, *args)
        assert r.returncode == 1 and "read-only" in r.stderr, (args, r.stdout, r.stderr)
    # Reading still works; `init` on an existing store only says it is ready.
    for args in (["status", "--json"], ["mailings"], ["audit"], ["template", "show", "3"], ["init"]):
        assert cli(db, *args).returncode == 0, args  # reading still works
    assert dump(db) == before


def test_console_read_only_refuses_every_key(db: Path) -> None:
    before = dump(db)
    store = Store(str(db), read_only=True)
    was_stopped = accounts.state(store).stopped
    app = MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, read_only=True, poll_interval=None)
    refusals: list[str] = []
    changing = [a for a in ACTIONS if a.action in
                ("emergency_stop", "resume", "delete_mailing", "toggle_pause", "edit_template", "requeue", "reschedule")]
    assert len(changing) == 7  # a new action must be added here (and refuse in read-only)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        table = app.query_one(MailingsTable)
        # The sending, the paused and the suspended mailing: between them every action applies.
        for mailing in (SALE, ODD, OLD_LIST):
            table.move_cursor(row=table.get_row_index(str(mailing)))
            await settle(pilot)
            for action in changing:
                # Answer yes to anything that asks, type into anything that opens, try to save.
                await pilot.press(action.keys.split(",")[0], "y", "x", "ctrl+s", "escape")
                await settle(pilot)
        await press(pilot, STOP_KEY_BARE, STOP_KEY)
        refusals.extend(n.message for n in app._notifications)
        assert app.view().stopped == was_stopped

    try:
        drive(app, script, size=(140, 40))
    finally:
        store.close()
    assert dump(db) == before
    assert refusals and all("Read-only console" in m and "refused" in m for m in refusals)
    assert any("stop refused" in m for m in refusals)
