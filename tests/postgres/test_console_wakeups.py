"""A console on a PostgreSQL store listens: what is done elsewhere shows at once, not at its next poll.

The console's poll interval is an hour here, so only a wake-up can make it read
within the test: each change is made through another Store (another connection,
as another host's command would), and the console must show it.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from mailconsole.console.app import MailConsole
from mailconsole.store import Actor, Store, accounts, mailings
from mailconsole.store.importer import create_mailing

OPERATOR = Actor("operator", "192.0.2.1")
ELSEWHERE = Actor("elsewhere", "192.0.2.7")
NEVER = 3600.0  # the console's poll interval: far longer than the test may take
PATIENCE = 600  # pauses of 0.05 s: 30 s at most, far less than NEVER


async def _until(pilot: Pilot, condition: Callable[[], bool], what: str) -> None:
    for _ in range(PATIENCE):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"the console did not show {what} without its poll")


def _mailing(store: Store, tmp_path: Path, name: str) -> int:
    path = tmp_path / f"{name}.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["email"], ["a@example.net"], ["b@example.net"]])
    return create_mailing(store, OPERATOR, name=name, sender="news@shop.example", subject="s",
                          text_body="t", html_body=None, recipients=path).mailing_id


def test_a_change_made_elsewhere_shows_at_once(pg_store_url: str, tmp_path: Path) -> None:
    elsewhere = Store(pg_store_url, create=False)
    first = _mailing(elsewhere, tmp_path, "first")
    app = MailConsole(Store(pg_store_url, create=False), actor=OPERATOR, poll_interval=NEVER,
                      host="ops-1", store_label="store")

    async def run() -> None:
        async with app.run_test() as pilot:
            await _until(pilot, lambda: app.listening, "a connected listener")
            assert app.snapshot is not None and not app.snapshot.stopped

            await asyncio.to_thread(accounts.stop, elsewhere, ELSEWHERE, reason="from another host")
            await _until(pilot, lambda: app.snapshot.stopped, "the stop")  # type: ignore[union-attr]

            await asyncio.to_thread(accounts.resume, elsewhere, ELSEWHERE)
            await _until(pilot, lambda: not app.snapshot.stopped, "the resume")  # type: ignore[union-attr]

            await asyncio.to_thread(mailings.pause, elsewhere, ELSEWHERE, first)
            await _until(pilot, lambda: _status(app, first) == "paused", "the pause")

            second = await asyncio.to_thread(_mailing, elsewhere, tmp_path, "second")
            await _until(pilot, lambda: _status(app, second) is not None, "the new mailing")
            assert app.wakeups >= 4

    try:
        asyncio.run(run())
    finally:
        app.store.close()
        elsewhere.close()


def test_an_sqlite_console_polls_as_before(tmp_path: Path) -> None:
    """No wake-ups on SQLite: the console neither listens nor reads except when it polls."""
    store = Store(str(tmp_path / "store.db"))
    app = MailConsole(store, actor=OPERATOR, poll_interval=NEVER, host="ops-1", store_label="store")

    async def run() -> None:
        async with app.run_test() as pilot:
            await pilot.pause(0.2)
            accounts.stop(store, ELSEWHERE, reason="from another process")
            await pilot.pause(0.5)
            assert not app.listening and app.wakeups == 0
            assert app.snapshot is not None and not app.snapshot.stopped  # until the next poll

    try:
        asyncio.run(run())
    finally:
        store.close()


def _status(app: MailConsole, mailing_id: int) -> str | None:
    snap = app.snapshot
    found = [m.status for m in snap.mailings if m.id == mailing_id] if snap is not None else []
    return found[0] if found else None
