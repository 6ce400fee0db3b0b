"""Many accounts: the picker, the switch, and nothing acting on an account that is not on screen.

The real app on a real store file with three accounts (accounts_builder.py),
driven by Pilot; a real second process holds the write lock where a busy store
is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lockholder import lock_held, release

from store_backend import sqlite_only, store_at
from mailconsole.console import launch
from mailconsole.console.accounts_screen import AccountPicker, AccountsTable, CommandLine
from mailconsole.console.analytics_tab import AnalyticsTab
from mailconsole.console.app import MailConsole
from mailconsole.console.header import ContextLine
from mailconsole.console.help_screen import keys_table
from mailconsole.console.live import read_snapshot
from mailconsole.console.modals import ConfirmScreen
from mailconsole.console.planned_tab import PlannedTab
from mailconsole.store import Store, accounts, queue
from mailconsole.store.mailings import list_mailings
from mailconsole.store.status import all_accounts

from .accounts_builder import ACME, GLOBEX, build_accounts
from .builder import ENGINE, FIXED, OPERATOR
from .conftest import HOST, STORE_LABEL
from .pilot import drive, press, screen_text, settle


class Clock:
    def __init__(self) -> None:
        self.now = FIXED

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    build_accounts(tmp_path / "store.db").close()
    return tmp_path / "store.db"


def _app(db: Path, clock: Callable[[], float] = lambda: FIXED, **kwargs: Any) -> MailConsole:
    store = Store(store_at(db), busy_timeout_ms=300, clock=clock)
    kwargs.setdefault("poll_interval", None)
    return MailConsole(store, clock=clock, actor=OPERATOR, host=HOST, store_label=STORE_LABEL, **kwargs)


def _header_account(app: MailConsole) -> str:
    line = str(app.screen.query_one(ContextLine).render())
    return line.split(" · account ", 1)[1].split(" · ", 1)[0]


def _analytics_keys(app: MailConsole) -> list[int]:
    table = app.query_one(AnalyticsTab).query_one("DataTable")
    return [int(row.key.value) for row in table.ordered_rows]  # type: ignore[attr-defined]


def _planned_keys(app: MailConsole) -> list[int]:
    table = app.query_one(PlannedTab).query_one("DataTable")
    return [int(row.key.value) for row in table.ordered_rows]  # type: ignore[attr-defined]


def _row(text: str, name: str) -> str:
    """The picker's line for account `name` (not the header's)."""
    return next(line for line in text.splitlines() if f" {name} " in line and " host " not in line)


async def _pick(pilot, name: str) -> None:  # type: ignore[no-untyped-def]
    """Open the picker, move the cursor to `name`, press enter."""
    app = pilot.app
    await press(pilot, "ctrl+a")
    assert isinstance(app.screen, AccountPicker)
    table = app.screen.query_one(AccountsTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()
    await pilot.press("enter")  # no settle: the very next frame must already be right


def test_ctrl_a_lists_every_account_with_its_state_and_queue(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "ctrl+a")
        assert isinstance(app.screen, AccountPicker)
        text = screen_text(app)
        lines = {name: _row(text, name) for name in ("default", ACME, GLOBEX)}
        # In words, so that it reads without colour; the current account marked.
        assert "● RUNNING" in lines["default"] and "▶" in lines["default"]
        assert "■ STOPPED" in lines[ACME] and "by bob" in lines[ACME]
        assert "● RUNNING" in lines[GLOBEX] and "▶" not in lines[GLOBEX]
        by_name = {a.name: a for a in all_accounts(app.store)}
        for name, line in lines.items():
            a = by_name[name]
            cells = line.split()
            assert f"{a.queued:,}" in cells and f"{a.in_flight:,}" in cells and str(a.mailings) in cells, line
        assert by_name[GLOBEX].queued == 13 and by_name[GLOBEX].mailings == 2  # the planned one counted too
        assert "F2 stops default" in text
        await press(pilot, "escape")
        assert not isinstance(app.screen, AccountPicker) and app.account == "default"

    drive(app, script, size=(120, 36))


def test_the_picker_shows_each_accounts_own_rate(db: Path) -> None:
    """Rates from each account's sent counter between two reads, not the engines' total."""
    clock = Clock()
    app = _app(db, clock)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        accounts.stop(app.store, OPERATOR, "default")  # only globex can send now (acme is stopped)
        claimed = queue.claim(app.store, ENGINE, 6, lease_seconds=60)
        assert {c.mailing_id for c in claimed} <= {m.id for m in list_mailings(app.store, GLOBEX)}
        queue.record(app.store, ENGINE, [queue.Outcome(c.id, c.mailing_id, "sent") for c in claimed])
        clock.now += 2.0
        app.poll()
        await settle(pilot)
        assert app.account_rates.of(GLOBEX) == pytest.approx(3.0)
        assert app.account_rates.of("default") == 0.0
        await press(pilot, "ctrl+a")
        line = _row(screen_text(app), GLOBEX)
        assert " 3.0 " in line, line
        # The meters and the banner too: the account's own rate, not the engines' 123/s for all accounts.
        assert "· 0 msg/s ·" in screen_text(app).splitlines()[0] or "STOPPED" in screen_text(app).splitlines()[0]
        table = app.screen.query_one(AccountsTable)
        table.move_cursor(row=table.get_row_index(GLOBEX))
        await press(pilot, "enter")
        assert "· 3.0 msg/s ·" in screen_text(app).splitlines()[0], screen_text(app).splitlines()[0]
        assert "123" not in screen_text(app).splitlines()[2]  # the meters line

    drive(app, script, size=(120, 36))


def test_enter_switches_and_the_first_frame_is_the_new_accounts(db: Path) -> None:
    app = _app(db)
    globex = {m.id for m in list_mailings(Store(store_at(db)), GLOBEX, planned=True)}

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        before = _analytics_keys(app)
        assert before and not set(before) & globex
        await _pick(pilot, GLOBEX)
        # The same frame: header, snapshot and every table (hidden tabs too) are globex's.
        assert app.account == GLOBEX and not isinstance(app.screen, AccountPicker)
        assert _header_account(app) == GLOBEX
        assert app.snapshot is not None and app.snapshot.account == GLOBEX
        shown = set(_analytics_keys(app))
        assert shown and shown <= globex, shown
        assert set(_planned_keys(app)) <= globex and _planned_keys(app)
        await settle(pilot)
        assert _header_account(app) == GLOBEX and set(_analytics_keys(app)) <= globex
        assert f"account {GLOBEX} · host" in screen_text(app).splitlines()[1]

    drive(app, script)


def test_esc_in_the_picker_changes_nothing(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "ctrl+a", "down", "escape")
        assert app.account == "default" and _header_account(app) == "default"

    drive(app, script)


def test_the_stop_key_after_a_switch_stops_the_account_shown_only(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await _pick(pilot, GLOBEX)
        await settle(pilot)
        await press(pilot, "f2")
        assert accounts.state(app.store, GLOBEX).stopped
        assert not accounts.state(app.store, "default").stopped
        assert "■ STOPPED" in screen_text(app).splitlines()[0]

    drive(app, script)


def test_a_read_for_the_old_account_that_lands_after_the_switch_is_dropped(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        # A read for default, started before the switch (its sequence number taken first) ...
        seq = app._next_read()
        old = read_snapshot(app.store, "default", FIXED)
        await _pick(pilot, GLOBEX)
        await settle(pilot)
        shown = app.snapshot
        # ... lands after it: not applied, whatever order the threads finish in.
        app._apply(old, seq)
        assert app.snapshot is shown and app.snapshot.account == GLOBEX
        # Nor one for default with a newer number (read for the account shown before the switch).
        app._apply(old, app._next_read())
        assert app.snapshot is shown
        assert set(_analytics_keys(app)) <= {m.id for m in list_mailings(app.store, GLOBEX, planned=True)}

    drive(app, script)


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@sqlite_only("holds the SQLite file's write lock from another process (tests/lockholder.py)")
def test_a_stop_not_saved_yet_keeps_its_account_and_refuses_the_switch(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        with lock_held(db) as holder:
            await pilot.press("f2")
            await _until(lambda: app.stop_progress is not None and app.stop_progress.phase == "busy", 5, "busy")
            await pilot.press("ctrl+a")
            await pilot.pause()
            table = app.screen.query_one(AccountsTable)
            table.move_cursor(row=table.get_row_index(GLOBEX))
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            # Refused, and said in the picker: the screen keeps showing the stop being retried.
            assert app.account == "default" and isinstance(app.screen, AccountPicker)
            assert "The stop of account default is still being saved" in screen_text(app)
            assert "STOP REQUESTED" in screen_text(app).splitlines()[0]
            release(holder)
            await _until(lambda: app.stop_request is not None and not app.stop_request.is_alive(), 10, "saved")
        # Saved for the account it was pressed for, and that one only.
        assert accounts.state(app.store, "default").stopped
        assert not accounts.state(app.store, GLOBEX).stopped
        await pilot.press("enter")  # now the switch goes through
        assert app.account == GLOBEX and _header_account(app) == GLOBEX
        await settle(pilot)
        assert "● RUNNING" in screen_text(app).splitlines()[0]  # globex's state, not default's stop
        assert not accounts.state(app.store, GLOBEX).stopped

    drive(app, script)


def test_a_dialog_open_for_one_account_refuses_the_switch(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2", "down", "d")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "ctrl+a")
        assert isinstance(app.screen, ConfirmScreen)  # no picker on top of the dialog
        assert app.account == "default"
        # By any route (the palette, the command line): refused, and why.
        refused = app.switch_account(GLOBEX)
        assert refused is not None and "Close the open dialog first" in refused and app.account == "default"
        await press(pilot, "y")  # the dialog acts on the account it was opened for
        assert app.account == "default" and _header_account(app) == "default"

    drive(app, script)


def test_the_palette_opens_the_picker(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "ctrl+p", *"Switch account", "enter")
        assert isinstance(app.screen, AccountPicker)

    drive(app, script)


def test_the_command_line_switches_and_names_an_unknown_account(db: Path) -> None:
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "colon", *"account nobody", "enter")
        assert isinstance(app.screen, CommandLine) and app.account == "default"
        assert f"No account named 'nobody' in this store (accounts: {ACME}, default, {GLOBEX})" in screen_text(app)
        await press(pilot, "escape", "colon", *"frobnicate", "enter")
        assert "Unknown command 'frobnicate'" in screen_text(app)
        await press(pilot, "escape", "colon", *"account", "enter")
        assert isinstance(app.screen, AccountPicker)
        await press(pilot, "escape", "colon", *f"account {ACME}", "enter")
        assert app.account == ACME and not isinstance(app.screen, CommandLine)
        assert _header_account(app) == ACME
        assert "■ STOPPED" in screen_text(app).splitlines()[0]

    drive(app, script)


def test_help_and_palette_list_the_picker() -> None:
    from rich.console import Console

    console = Console(width=120, record=True)
    console.print(keys_table())
    text = console.export_text()
    assert "ctrl+a" in text and "Switch account" in text and "account NAME" in text


def test_the_console_starts_on_the_account_given(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mailconsole console --account NAME` opens that account."""
    seen: dict[str, Any] = {}

    def fake_run(store: Store, account: str = "default", **kwargs: Any) -> int:
        seen["account"] = account
        return 0

    monkeypatch.setattr(launch, "run_console", fake_run)
    args = argparse.Namespace(db=store_at(db), account=GLOBEX, no_engine=True, read_only=False, transport=None)
    from mailconsole.cli.common import Context

    assert launch.launch(Context(args)) == 0 and seen["account"] == GLOBEX


@sqlite_only("holds the SQLite file's write lock from another process (tests/lockholder.py)")
def test_an_action_still_waiting_for_the_store_refuses_the_switch(db: Path) -> None:
    """A pause retried on a busy store keeps its account: no switch until it is applied."""
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "2")
        with lock_held(db) as holder:
            await pilot.press("p")
            await asyncio.sleep(0.5)  # the pause is waiting for the write lock
            refused = app.switch_account(GLOBEX)
            assert refused is not None and "An action on account default is still running" in refused
            assert app.account == "default"
            release(holder)
            await settle(pilot)
        assert app.switch_account(GLOBEX) is None and app.account == GLOBEX

    drive(app, script)


def test_the_stop_key_in_the_picker_stops_the_account_in_the_header(db: Path) -> None:
    """The highlighted row is not the target: the account named in the header is."""
    app = _app(db)

    async def script(pilot) -> None:  # type: ignore[no-untyped-def]
        await press(pilot, "ctrl+a")
        table = app.screen.query_one(AccountsTable)
        table.move_cursor(row=table.get_row_index(GLOBEX))
        await press(pilot, "f2")
        assert isinstance(app.screen, AccountPicker)
        assert accounts.state(app.store, "default").stopped and not accounts.state(app.store, GLOBEX).stopped
        assert "■ STOPPED" in screen_text(app).splitlines()[0]
        assert "■ STOPPED" in _row(screen_text(app), "default")  # the overview follows at once

    drive(app, script)


def test_the_header_sets_the_account_apart_at_every_width() -> None:
    from mailconsole.console.header import ACCOUNT_STYLE, context_line

    for width in (120, 76, 58):
        line = context_line(STORE_LABEL, GLOBEX, HOST, width)
        styled = [line.plain[s.start:s.end] for s in line.spans if str(s.style) == ACCOUNT_STYLE]
        assert styled == [GLOBEX], (width, line.spans)
