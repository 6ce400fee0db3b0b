"""Quitting a console whose engine is the only one sending: it asks, Cancel keeps sending,
Quit ends it, and afterwards neither `status` nor a console says RUNNING as if mail went out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from store_backend import store_at
from mailconsole.cli import main
from mailconsole.console.app import MailConsole
from mailconsole.console.modals import ConfirmScreen
from mailconsole.store import accounts, mailings, status

from .builder import OPERATOR
from .pilot import screen_text
from .smtpsink import smtp_server  # noqa: F401  (fixture)
from .test_guest_engine import _smtp_engine, _store, _until


def _words(screen: str) -> str:
    """The screen's words in one line: the dialog's lines run on, borders and shading dropped."""
    return " ".join(re.sub(r"[^\w\s,.`:?()-]", " ", screen).split())


def test_q_asks_cancel_keeps_sending_quit_ends_and_status_says_no_engine(tmp_path: Path, smtp_server, capsys) -> None:  # type: ignore[no-untyped-def]
    port, server = smtp_server
    store, mid = _store(tmp_path, 3000)
    engine = _smtp_engine(store, port, rate=100)
    app = MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2)

    async def main_() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(lambda: server.count >= 10 and app.snapshot is not None
                         and app.snapshot.overview.live_engines, 20, "the engine sending")
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen) and app.screen.id == "quit-confirm"
            await _until(lambda: "stops with it" in screen_text(app), 5, "the dialog drawn")
            text = _words(screen_text(app))
            assert "The engine inside this console stops with it" in text and "queued messages stay" in text
            assert "mailconsole serve" in text
            assert app.focused is not None and app.focused.id == "no"  # Cancel is the default
            await pilot.press("q")  # a second q while asking adds no second dialog
            await pilot.pause()
            assert len([s for s in app.screen_stack if isinstance(s, ConfirmScreen)]) == 1
            await pilot.press("n")
            await pilot.pause()
            assert app.is_running and not isinstance(app.screen, ConfirmScreen)
            before = server.count
            await _until(lambda: server.count > before + 5, 10, "sending to go on after Cancel")
            assert engine.running
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await _until(lambda: not app.is_running, 20, "the console to quit")

    asyncio.run(main_())
    assert not engine.running
    m = mailings.get_mailing(store, mid)
    assert m.in_flight == 0 and 0 < m.queued < 3000
    assert status.overview(store).live_engines == []
    capsys.readouterr()
    assert main(["--db", store_at(tmp_path / "guest.db"), "status"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("RUNNING — no engine: nothing is being sent"), first


def test_a_stopped_account_quits_without_asking(tmp_path: Path, smtp_server) -> None:  # type: ignore[no-untyped-def]
    port, server = smtp_server
    store, _ = _store(tmp_path, 500)
    accounts.stop(store, OPERATOR)
    engine = _smtp_engine(store, port)
    app = MailConsole(store, actor=OPERATOR, engine=engine, poll_interval=0.2)

    async def main_() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(lambda: app.snapshot is not None and app.snapshot.overview.live_engines, 20, "the engine")
            await pilot.press("q")
            await _until(lambda: not app.is_running, 20, "the console to quit")

    asyncio.run(main_())
    assert server.count == 0 and not engine.running
